package dev.strata.fuse.kernel;

/**
 * What every request family works with: the state the workers share, and the worker serving the
 * request (its buffers, replies and request decoding).
 */
abstract class Family {
    final KernelFS fs;
    final Worker w;

    Family(KernelFS fs, Worker w) {
        this.fs = fs;
        this.w = w;
    }
}
