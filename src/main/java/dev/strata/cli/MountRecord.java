package dev.strata.cli;

import dev.strata.inspect.MountInfo;
import dev.strata.inspect.MountRegistry;
import dev.strata.options.MountOptions;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Records a live mount (mountpoint and layers) in the {@link MountRegistry} once it is ready, so that
 * {@code strata explain PATH} and {@code strata diff MOUNTPOINT} find the layers behind a path; the
 * record goes away when the daemon ends.
 */
final class MountRecord implements AutoCloseable {
    private final Path mountpoint;
    private final MountOptions opts;
    private MountRegistry.Registration registration;

    MountRecord(Path mountpoint, MountOptions opts) {
        this.mountpoint = mountpoint;
        this.opts = opts;
    }

    /** Counted down once the record is written (or could not be): what the mount's ready signal waits for. */
    private final java.util.concurrent.CountDownLatch recorded = new java.util.concurrent.CountDownLatch(1);

    /** Writes the record, then deletes the stale records of dead mounts (after: the mount need not wait for that). */
    void register() {
        try {
            registration = MountRegistry.record(MountInfo.ofThisProcess(mountpoint, opts.lowerDirs, opts.upperDir, opts.workDir));
        } catch (IOException | RuntimeException e) {
            // the mount works without it; only explain/diff by mountpoint need the record
            System.err.println("strata: warning: cannot record the mount for explain/diff: " + e.getMessage());
        } finally {
            recorded.countDown();
        }
        MountRegistry.cleanup(MountRegistry.directory());
    }

    /** Waits until {@link #register} wrote the record (or gave up). */
    void awaitRecorded() {
        boolean interrupted = false;
        while (true) {
            try {
                recorded.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    @Override public void close() {
        if (registration != null) registration.close();
    }
}
