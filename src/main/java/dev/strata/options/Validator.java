package dev.strata.options;

import dev.strata.posix.Posix;
import dev.strata.posix.Stat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Checks a configuration against the file system before anything is mounted. Each problem is one
 * line naming the directory and what is wrong; nothing is created or changed here.
 */
public final class Validator {
    private Validator() {}

    /** Entries the kernel overlay, fuse-overlayfs and strata leave in a workdir between mounts. */
    private static final Set<String> WORKDIR_OWN = Set.of("work", "index", "incompat");

    /** Returns the problems found (empty when the configuration can be mounted). */
    public static List<String> check(MountOptions o, Path mountpoint) {
        List<String> p = new ArrayList<>();
        List<Path> realLowers = new ArrayList<>(), givenLowers = new ArrayList<>();
        for (Path l : o.allLowerDirs()) {
            Path r = dir(o.dataDirs.contains(l) ? "datadir" : "lowerdir", l, p);
            if (r != null) {
                realLowers.add(r);
                givenLowers.add(l);
            }
        }
        // as the kernel's mount (ovl_setup_trap, ovl_check_layer): one directory as two layers is a
        // "conflicting lowerdir path", a layer inside another an "overlapping lowerdir path"
        for (int i = 0; i < realLowers.size(); i++) {
            for (int j = i + 1; j < realLowers.size(); j++) {
                Path a = realLowers.get(i), b = realLowers.get(j);
                if (a.equals(b)) {
                    p.add("lowerdir " + givenLowers.get(j) + " is given twice (a layer can be in the stack once)");
                } else if (a.startsWith(b) || b.startsWith(a)) {
                    p.add("lowerdir " + givenLowers.get(i) + " and lowerdir " + givenLowers.get(j) + " overlap (one is inside the other)");
                }
            }
        }
        Path upper = null, work = null;
        if (o.upperDir != null) {
            upper = dir("upperdir", o.upperDir, p);
            work = dir("workdir", o.workDir, p);
            if (upper != null && !Files.isWritable(upper)) p.add("upperdir " + o.upperDir + " is not writable");
            if (work != null && !Files.isWritable(work)) p.add("workdir " + o.workDir + " is not writable");
            if (upper != null && work != null) {
                Stat a = new Stat(), b = new Stat();
                Posix.fstatat(Posix.AT_FDCWD, upper.toString(), a, 0);
                Posix.fstatat(Posix.AT_FDCWD, work.toString(), b, 0);
                if (a.dev() != b.dev()) {
                    p.add("workdir " + o.workDir + " is not on the same filesystem as upperdir " + o.upperDir);
                }
                if (upper.equals(work)) p.add("upperdir and workdir are the same directory (" + o.upperDir + ")");
                else if (work.startsWith(upper)) p.add("workdir " + o.workDir + " is inside upperdir " + o.upperDir);
                else if (upper.startsWith(work)) p.add("upperdir " + o.upperDir + " is inside workdir " + o.workDir);
                String stray = strayEntry(work);
                if (stray != null) {
                    p.add("workdir " + o.workDir + " is not empty (it holds '" + stray + "'); use an empty directory");
                }
                for (Path l : realLowers) {
                    if (upper.startsWith(l) && !upper.equals(l) || l.startsWith(upper)) {
                        p.add("upperdir " + o.upperDir + " and lowerdir " + l + " overlap");
                    } else if (upper.equals(l)) {
                        p.add("upperdir " + o.upperDir + " is also a lowerdir");
                    }
                }
            }
        }
        if (mountpoint != null) {
            Path m = dir("mountpoint", mountpoint, p);
            if (m != null) {
                for (Path l : realLowers) {
                    if (m.startsWith(l) && !m.equals(l)) p.add("mountpoint " + mountpoint + " is inside lowerdir " + l);
                }
                if (upper != null && m.startsWith(upper)) p.add("mountpoint " + mountpoint + " is inside upperdir " + o.upperDir);
                if (work != null && m.startsWith(work)) p.add("mountpoint " + mountpoint + " is inside workdir " + o.workDir);
            }
        }
        return p;
    }

    private static Path dir(String what, Path path, List<String> problems) {
        if (!Files.exists(path)) {
            problems.add(what + " " + path + " does not exist");
            return null;
        }
        if (!Files.isDirectory(path)) {
            problems.add(what + " " + path + " is not a directory");
            return null;
        }
        try {
            return path.toRealPath();
        } catch (IOException e) {
            problems.add(what + " " + path + ": " + e.getMessage());
            return null;
        }
    }

    /** The first name (in sorted order) in the workdir that is not the kernel's or strata's own, or null. */
    private static String strayEntry(Path work) {
        String first = null;
        try (java.nio.file.DirectoryStream<Path> s = Files.newDirectoryStream(work)) {
            for (Path x : s) {
                String n = x.getFileName().toString();
                if (!WORKDIR_OWN.contains(n) && (first == null || n.compareTo(first) < 0)) first = n;
            }
        } catch (IOException | java.nio.file.DirectoryIteratorException e) {
            return null;
        }
        return first;
    }
}
