package dev.strata.daemon;

import dev.strata.posix.Posix;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Pauses one mount of this user's shared daemon (image commit --pause): a request on the daemon's
 * socket that the daemon answers once that mount's requests are held, and that holds them for as long
 * as the connection is open. Closing it (or the end of this process, whatever the cause: the kernel
 * closes the socket) resumes the mount, so a pause never outlives the commit that asked for it.
 */
public final class PauseClient implements AutoCloseable {
    /** The request's first argument (after the cwd); no strata command has this name. */
    public static final String REQUEST = "--pause-mount";
    /** The line the daemon sends once the mount is held. */
    public static final String PAUSED = "paused";

    private final SocketChannel ch;

    private PauseClient(SocketChannel ch) { this.ch = ch; }

    /**
     * Pauses the mount at {@code mountpoint} if this user's shared daemon (of this mount and user
     * namespace) serves it; null if there is no such daemon or it does not serve that mount.
     * @throws IOException the daemon serves it but could not pause it (the message says why)
     */
    public static PauseClient pause(Path mountpoint) throws IOException {
        for (String path : socketPaths()) {
            PauseClient c = pause(path, mountpoint);
            if (c != null) return c;
        }
        return null;
    }

    private static PauseClient pause(String path, Path mountpoint) throws IOException {
        SocketChannel ch;
        try {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
        boolean keep = false;
        try {
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
            } catch (IOException e) {
                return null; // no daemon
            }
            List<String> req = List.of(Path.of("/").toString(), REQUEST, mountpoint.toString());
            ByteBuffer b = ByteBuffer.allocate(4096 + mountpoint.toString().length() * 2);
            b.putInt(req.size());
            for (String s : req) {
                byte[] v = s.getBytes(StandardCharsets.ISO_8859_1);
                b.putInt(v.length).put(v);
            }
            b.flip();
            while (b.hasRemaining()) ch.write(b);
            List<String> lines = new ArrayList<>();
            while (true) {
                ByteBuffer h = readFully(ch, 5);
                if (h == null) throw new IOException("the shared daemon went away before the mount was paused");
                char type = (char) h.get(0);
                int len = h.getInt(1);
                if (len < 0 || len > (1 << 20)) throw new IOException("bad answer from the shared daemon");
                ByteBuffer p = readFully(ch, len);
                if (p == null) throw new IOException("the shared daemon went away before the mount was paused");
                String payload = new String(p.array(), 0, len, StandardCharsets.ISO_8859_1);
                if (type == 'r') return null;
                if (type == 'e' && payload.equals(PAUSED)) {
                    keep = true;
                    return new PauseClient(ch);
                }
                if (type == 'e') lines.add(payload);
                else throw new IOException(lines.isEmpty() ? "the shared daemon could not pause the mount" : String.join("; ", lines));
            }
        } finally {
            if (!keep) ch.close();
        }
    }

    private static ByteBuffer readFully(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) return null;
        }
        b.flip();
        return b;
    }

    /** Resumes the mount. */
    @Override public void close() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // closed: the daemon resumes the mount either way
        }
    }

    /**
     * The sockets of this namespace's daemons that bin/strata uses (src/main/c/strata.c):
     * DIR/mnt-M-user-U-H.sock, H a hash of the strata build and the JVM settings the daemon was started
     * with (one daemon for each), in the first of $STRATA_DAEMON_DIR, $XDG_RUNTIME_DIR/strata/daemon,
     * /run/strata/daemon (root), /tmp/strata-daemon-EUID, which must be this euid's and closed to others;
     * none if none qualifies.
     */
    static List<String> socketPaths() {
        String prefix = socketPrefix();
        if (prefix == null) return List.of();
        List<String> all = new ArrayList<>();
        Path p = Path.of(prefix);
        try (var list = Files.newDirectoryStream(p.getParent(), p.getFileName() + "-*.sock")) {
            for (Path s : list) all.add(s.toString());
        } catch (IOException | RuntimeException e) {
            // none
        }
        return all;
    }

    /** DIR/mnt-M-user-U of this process's namespaces, or null where DIR does not qualify. */
    static String socketPrefix() {
        int euid = Posix.geteuid();
        String d = System.getenv("STRATA_DAEMON_DIR"), x = System.getenv("XDG_RUNTIME_DIR");
        String dir;
        if (d != null && !d.isEmpty()) dir = d;
        else if (x != null && x.startsWith("/")) dir = x + "/strata/daemon";
        else if (euid == 0) dir = "/run/strata/daemon";
        else dir = "/tmp/strata-daemon-" + euid;
        try {
            Path p = Path.of(dir);
            if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) return null;
            int uid = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if (uid != euid || (mode & 077) != 0) return null;
            return dir + "/mnt-" + nsInode("mnt") + "-user-" + nsInode("user");
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String nsInode(String ns) throws IOException {
        String l = Files.readSymbolicLink(Path.of("/proc/self/ns/" + ns)).toString();
        int a = l.indexOf('['), z = l.indexOf(']');
        if (a < 0 || z <= a + 1) throw new IOException("namespace link " + l);
        return l.substring(a + 1, z);
    }
}
