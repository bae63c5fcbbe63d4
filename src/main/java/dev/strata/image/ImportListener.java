package dev.strata.image;

/** What an import reports as it goes; every method has a do-nothing default. */
public interface ImportListener {
    /** A line for the user (what is being imported, a layer extracted or reused, the result). */
    default void info(String line) {}

    /** Something skipped or not kept (devices without root, xattrs that need root...). */
    default void warning(String line) {}

    /** Another process holds the store's lock; the import waits for it. */
    default void waitingForLock(java.nio.file.Path lockFile) {}

    /** Progress within a layer: {@code done} of {@code total} blob bytes read ({@code total} -1 if unknown). */
    default void progress(int layer, int layers, long done, long total) {}

    /** The progress of the current layer is over (a progress line may be cleared). */
    default void progressDone() {}

    ImportListener QUIET = new ImportListener() {};
}
