package dev.strata.cli;

import dev.strata.options.MountOptions;

import java.nio.file.Path;

/**
 * Records a live mount (mountpoint and layers) so that tools like {@code strata explain PATH} can find
 * the layers behind a path. The registry itself lives in dev.strata.inspect; until it is present this
 * records nothing.
 */
final class MountRecord implements AutoCloseable {
    private final Path mountpoint;
    private final MountOptions opts;

    MountRecord(Path mountpoint, MountOptions opts) {
        this.mountpoint = mountpoint;
        this.opts = opts;
    }

    void register() { }

    @Override public void close() { }
}
