package dev.strata.posix;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.strata.posix.Posix.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Names the hot calls hand the kernel from a per-thread native buffer ({@link Posix#nativeName}): any
 * byte (names are Latin-1 strings of their bytes), the two names of a getxattrat kept apart, and names
 * too long for the buffer taking jnr's own conversion with the kernel's answer.
 */
class NativeNameTest {
    @TempDir Path tmp;

    /** The byte string of a name as strata holds it (each byte one char). */
    private static String bytes(byte... b) { return new String(b, NAMES); }

    @Test void everyByteOfANameReachesTheKernel() throws IOException {
        int root = Posix.openat(AT_FDCWD, tmp.toString(), O_PATH | O_DIRECTORY, 0);
        assertTrue(root >= 0);
        try {
            String odd = bytes((byte) 'c', (byte) 0xe9, (byte) 0x80, (byte) 0xff, (byte) ' ', (byte) '\n');
            int fd = Posix.openat(root, odd, O_CREAT | O_WRONLY | O_EXCL, 0600);
            assertTrue(fd >= 0, "created: " + fd);
            Posix.close(fd);
            Stat st = new Stat();
            // the file system got exactly those bytes: jnr's own String conversion (the way names went
            // before) finds the same file, and it is the only one
            assertEquals(0, Posix.C.fstatat(root, odd, st.buf, AT_SYMLINK_NOFOLLOW));
            long ino = st.ino();
            assertEquals(0, Posix.fstatat(root, odd, st, AT_SYMLINK_NOFOLLOW));
            assertEquals(S_IFREG, st.type());
            assertEquals(ino, st.ino());
            assertEquals(1, Files.list(tmp).count());
            assertEquals(-Errno.ENOENT, Posix.fstatat(root, odd + "x", st, AT_SYMLINK_NOFOLLOW));
            int sub = Posix.openat2(root, odd, O_RDONLY, 0, RESOLVE_BENEATH);
            assertTrue(sub >= 0 || sub == -Errno.ENOSYS, "openat2: " + sub);
            if (sub >= 0) Posix.close(sub);
        } finally {
            Posix.close(root);
        }
    }

    @Test void getxattratKeepsItsTwoNamesApart() throws IOException {
        Files.writeString(tmp.resolve("f"), "x");
        int root = Posix.openat(AT_FDCWD, tmp.toString(), O_PATH | O_DIRECTORY, 0);
        try {
            if (Posix.lsetxattr(tmp.resolve("f").toString(), "user.strata.test", new byte[]{'v', '1'}, 0) < 0) return; // no user xattrs here
            assertArrayEquals(new byte[]{'v', '1'}, Posix.getxattrAt(root, "f", "user.strata.test"));
            assertNull(Posix.getxattrAt(root, "f", "user.strata.other"));
            assertNull(Posix.getxattrAt(root, "g", "user.strata.test"));
        } finally {
            Posix.close(root);
        }
    }

    @Test void aNameLongerThanTheBufferGetsTheKernelsAnswer() {
        String longName = "a/".repeat(2500) + "b"; // 5001 bytes: past PATH_MAX
        Stat st = new Stat();
        assertEquals(-Errno.ENAMETOOLONG, Posix.fstatat(AT_FDCWD, tmp + "/" + longName, st, AT_SYMLINK_NOFOLLOW));
        assertEquals(-Errno.ENAMETOOLONG, Posix.openat(AT_FDCWD, tmp + "/" + longName, O_RDONLY, 0));
        String justUnder = tmp + "/" + "c/".repeat((4090 - tmp.toString().length()) / 2);
        assertEquals(-Errno.ENOENT, Posix.fstatat(AT_FDCWD, justUnder, st, AT_SYMLINK_NOFOLLOW));
    }
}
