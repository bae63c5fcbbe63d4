package dev.strata.cli;

import dev.strata.daemon.Threads;
import dev.strata.inspect.MountInfo;
import dev.strata.inspect.MountRegistry;
import dev.strata.options.MountOptions;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Records a live mount (mountpoint and layers) in the {@link MountRegistry} while it mounts, so that
 * {@code strata explain PATH} and {@code strata diff MOUNTPOINT} find the layers behind a path and
 * {@code strata image rm} sees the layers in use as soon as the mount command returns; the record goes
 * away with the mount (or, should the daemon die, is stale: readers skip it, a later mount deletes it).
 */
final class MountRecord implements AutoCloseable {
    /**
     * How often a daemon deletes the stale records of dead mounts: a pass reads every record (one per
     * running container), which a container start need not pay for each time (readers skip stale ones).
     */
    static final long CLEANUP_EVERY_NANOS = Long.getLong("strata.registryCleanupSeconds", 60) * 1_000_000_000L;
    private static final AtomicLong lastCleanup = new AtomicLong(System.nanoTime() - CLEANUP_EVERY_NANOS - 1);

    private final Path mountpoint;
    private final MountOptions opts;
    private MountRegistry.Registration registration;
    /** Counted down once the record is written (or could not be): what the mount's ready signal waits for. */
    private final CountDownLatch recorded = new CountDownLatch(1);
    /** Counted down when {@link #register} has ended (or was never started). */
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile boolean started;

    MountRecord(Path mountpoint, MountOptions opts) {
        this.mountpoint = mountpoint;
        this.opts = opts;
    }

    /** Writes the record on a thread of the daemon's pool while the caller mounts (see {@link #awaitRecorded}). */
    void start() {
        Threads.RECORDS.run(this::register, "strata-register");
        started = true;
    }

    /** Writes the record, then (at most once a {@link #CLEANUP_EVERY_NANOS}) deletes the stale records of dead mounts. */
    void register() {
        try {
            try {
                registration = MountRegistry.record(MountInfo.ofThisProcess(mountpoint, opts.lowerDirs, opts.upperDir, opts.workDir));
            } catch (IOException | RuntimeException e) {
                // the mount works without it; only explain/diff by mountpoint need the record
                System.err.println("strata: warning: cannot record the mount for explain/diff: " + e.getMessage());
            } finally {
                recorded.countDown();
            }
            long now = System.nanoTime(), last = lastCleanup.get();
            if (now - last > CLEANUP_EVERY_NANOS && lastCleanup.compareAndSet(last, now)) {
                MountRegistry.cleanup(MountRegistry.directory());
            }
        } finally {
            ended.countDown();
        }
    }

    /** Waits until {@link #register} wrote the record (or gave up). */
    void awaitRecorded() {
        await(recorded);
    }

    private static void await(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Waits for a started {@link #register} to end, then deletes the record. */
    @Override public void close() {
        if (started) await(ended);
        if (registration != null) registration.close();
    }
}
