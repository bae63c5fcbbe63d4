package dev.strata.nativetest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The directories of one overlay: lower layers (top first), an upper and a workdir (both may be null
 * for a read-only mount) and a mountpoint, all below one root directory.
 */
public final class LayerSet {
    public final Path root;
    public final List<Path> lowers;
    /** Data-only lower layers below {@link #lowers} (lowerdir=A::D; overlayfs.rst "Data-only lower layers"), top first. */
    public final List<Path> data;
    public final Path upper, work, mnt;
    /** Further options every implementation is mounted with (mount flags such as noatime), or null. */
    public final String options;

    public LayerSet(Path root, List<Path> lowers, Path upper, Path work, Path mnt) {
        this(root, lowers, List.of(), upper, work, mnt, null);
    }

    private LayerSet(Path root, List<Path> lowers, List<Path> data, Path upper, Path work, Path mnt, String options) {
        this.root = root;
        this.lowers = Collections.unmodifiableList(new ArrayList<>(lowers));
        this.data = Collections.unmodifiableList(new ArrayList<>(data));
        this.upper = upper; this.work = work; this.mnt = mnt;
        this.options = options;
    }

    /** The same directories mounted with these options added (on the kernel overlay and the implementation alike). */
    public LayerSet withOptions(String opts) { return new LayerSet(root, lowers, data, upper, work, mnt, opts); }

    /** The same directories with these data-only layers below the lowers (mounted as lowerdir=A::D1::D2). */
    public LayerSet withData(List<Path> dataLayers) { return new LayerSet(root, lowers, dataLayers, upper, work, mnt, options); }

    /** Every lower directory, the data-only ones last: what must stay unchanged. */
    public List<Path> allLowers() {
        List<Path> all = new ArrayList<>(lowers);
        all.addAll(data);
        return all;
    }

    /** root/l0..l{n-1}, root/upper, root/work, root/mnt, all created empty. */
    public static LayerSet create(Path root, int lowerCount) {
        List<Path> lowers = new ArrayList<>();
        for (int i = 0; i < lowerCount; i++) lowers.add(root.resolve("l" + i));
        LayerSet s = new LayerSet(root, lowers, root.resolve("upper"), root.resolve("work"), root.resolve("mnt"));
        try {
            for (Path p : lowers) Files.createDirectories(p);
            Files.createDirectories(s.upper);
            Files.createDirectories(s.work);
            Files.createDirectories(s.mnt);
        } catch (IOException e) {
            throw new IllegalStateException("cannot create layer dirs under " + root + ": " + e, e);
        }
        return s;
    }

    /** The same lowers and upper with another (new, empty) workdir and mountpoint, e.g. to remount with another implementation. */
    public LayerSet withFreshWorkAndMnt(String suffix) {
        Path w = upper == null ? null : root.resolve("work-" + suffix);
        Path m = root.resolve("mnt-" + suffix);
        try {
            if (w != null) Files.createDirectories(w);
            Files.createDirectories(m);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return new LayerSet(root, lowers, data, upper, w, m, options);
    }

    /** A read-only view: the same lowers, no upper. */
    public LayerSet readOnly(String suffix) {
        Path m = root.resolve("mnt-" + suffix);
        try { Files.createDirectories(m); } catch (IOException e) { throw new IllegalStateException(e); }
        return new LayerSet(root, lowers, data, null, null, m, options);
    }

    public boolean writable() { return upper != null; }

    public String lowerdir() {
        return lowers.stream().map(Path::toString).collect(Collectors.joining(":"))
                + data.stream().map(d -> "::" + d).collect(Collectors.joining());
    }

    /** The fuse-overlayfs/kernel option string lowerdir=..,upperdir=..,workdir=.. */
    public String overlayOptions() {
        String o = "lowerdir=" + lowerdir();
        if (upper != null) o += ",upperdir=" + upper + ",workdir=" + work;
        return options == null || options.isEmpty() ? o : o + "," + options;
    }

    @Override public String toString() { return overlayOptions() + " on " + mnt; }
}
