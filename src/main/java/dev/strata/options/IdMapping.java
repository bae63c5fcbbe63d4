package dev.strata.options;

import java.util.ArrayList;
import java.util.List;

/**
 * A uid or gid mapping in fuse-overlayfs's format: {@code uidmapping=:C:H:N:C:H:N...} (an optional
 * leading separator, then triples container-id:host-id:size; ':' or '/' may separate), as
 * containers-storage passes its ID maps. Layers on disk hold container ids (what the image says); the
 * mount shows host ids, which the container's user namespace maps back to container ids. So on-disk id
 * C+k shows as H+k, and an id H+k given through the mount is stored as C+k (fuse-overlayfs behaves the
 * same: with {@code uidmapping=:0:100000:65536} a file owned by 5 on disk shows as 100005). Unmapped
 * ids show as the overflow id 65534.
 */
public final class IdMapping {
    public static final IdMapping IDENTITY = new IdMapping(new long[0]);
    public static final int OVERFLOW = 65534;
    private final long[] triples; // container, host, size

    private IdMapping(long[] triples) { this.triples = triples; }

    public boolean isIdentity() { return triples.length == 0; }

    public static IdMapping parse(String spec) {
        String s = spec;
        if (s.isEmpty()) throw new IllegalArgumentException("empty mapping");
        char sep = s.charAt(0);
        if (sep == ':' || sep == '/') s = s.substring(1); else sep = ':';
        String[] parts = s.split(java.util.regex.Pattern.quote(String.valueOf(sep)), -1);
        if (parts.length % 3 != 0) {
            throw new IllegalArgumentException("'" + spec + "' is not a list of container:host:size triples");
        }
        List<Long> out = new ArrayList<>();
        for (String p : parts) {
            try {
                long v = Long.parseLong(p);
                if (v < 0 || v > 0xffffffffL) throw new NumberFormatException();
                out.add(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + p + "' in '" + spec + "' is not an id");
            }
        }
        long[] t = new long[out.size()];
        for (int i = 0; i < t.length; i++) t[i] = out.get(i);
        for (int i = 2; i < t.length; i += 3) {
            if (t[i] == 0) throw new IllegalArgumentException("a mapping of size 0 in '" + spec + "'");
        }
        return new IdMapping(t);
    }

    /** On-disk (container) id to the id the mount shows (host id). */
    public int toContainer(int diskId) {
        if (triples.length == 0) return diskId;
        long d = diskId & 0xffffffffL;
        for (int i = 0; i < triples.length; i += 3) {
            if (d >= triples[i] && d < triples[i] + triples[i + 2]) return (int) (triples[i + 1] + d - triples[i]);
        }
        return OVERFLOW;
    }

    /** Id given through the mount (host id) to the on-disk (container) id; -1 if it has no mapping. */
    public int toHost(int shownId) {
        if (triples.length == 0) return shownId;
        long s = shownId & 0xffffffffL;
        for (int i = 0; i < triples.length; i += 3) {
            if (s >= triples[i + 1] && s < triples[i + 1] + triples[i + 2]) return (int) (triples[i] + s - triples[i + 1]);
        }
        return -1;
    }
}
