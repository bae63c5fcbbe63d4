package dev.strata.image;

/**
 * What the store knows about one extracted layer, written to {@code STORE/layers/sha256/<hex>.json}
 * before the layer directory is renamed into place (so every layer directory has one).
 */
public final class LayerInfo {
    public int schemaVersion = 1;
    public String diffId;
    public long tarSize;
    public long contentSize;
    public long files, dirs, symlinks, hardlinks, devices, fifos, whiteouts, opaqueDirs;
    /** Whether it was extracted by root (ownership, devices and trusted xattrs kept). */
    public boolean extractedAsRoot;
    public String whiteoutForm;
    public String opaqueForm;
    public String extracted;

    public LayerInfo() {}
}
