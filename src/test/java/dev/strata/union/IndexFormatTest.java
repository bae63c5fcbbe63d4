package dev.strata.union;

import dev.strata.posix.Errno;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The kernel's index formats without a mount: struct ovl_fb, index entry names, overlay.nlink. */
class IndexFormatTest {
    /** A value the kernel (6.18, ext4 with a null uuid) wrote as trusted.overlay.origin of a copied-up file. */
    static final String KERNEL_ORIGIN = "00fb1d00010000000000000000000000000000000051eb200083107d8c";

    @Test void packsTheKernelsHandle() {
        byte[] fid = FileHandles.unhex("51eb200083107d8c");
        byte[] fb = FileHandles.pack(fid, 1, new byte[16], false);
        assertEquals(KERNEL_ORIGIN, FileHandles.hex(fb));
        assertEquals(0, FileHandles.check(fb));
        byte[] upper = FileHandles.pack(fid, 1, new byte[16], true);
        assertEquals(FileHandles.FLAG_PATH_UPPER, upper[3]);  // overlay.upper of the index dir: "00fb1d0401..."
        assertEquals("00fb1d0401", FileHandles.hex(upper).substring(0, 10));
    }

    @Test void checksAsTheKernelDoes() {
        byte[] fb = FileHandles.unhex(KERNEL_ORIGIN);
        fb[1] = 0x12;
        assertEquals(-Errno.EINVAL, FileHandles.check(fb));             // bad magic
        fb = FileHandles.unhex(KERNEL_ORIGIN);
        fb[0] = 1;
        assertEquals(-Errno.ENODATA, FileHandles.check(fb));            // newer version: origin unknown
        fb = FileHandles.unhex(KERNEL_ORIGIN);
        fb[3] = FileHandles.FLAG_BIG_ENDIAN;
        assertEquals(-Errno.ENODATA, FileHandles.check(fb));            // the other endianness
        assertEquals(-Errno.EINVAL, FileHandles.check(new byte[3]));
        assertNull(FileHandles.unhex("abc"));
        assertNull(FileHandles.unhex("zz"));
        assertArrayEquals(new byte[]{0x00, (byte) 0xfb}, FileHandles.unhex("00fb"));
    }

    @Test void overlayNlinkAsOvlGetNlink() {
        assertEquals(3, Index.overlayNlink(b("U+1"), 2, -1));
        assertEquals(2, Index.overlayNlink(b("U-1"), 3, -1));
        assertEquals(0, Index.overlayNlink(b("U-1"), 1, -1));           // nothing left: an orphan
        assertEquals(5, Index.overlayNlink(b("L+2"), 1, 3));
        assertEquals(-1, Index.overlayNlink(b("L+2"), 1, -1));          // the lower count unknown
        assertEquals(0, Index.overlayNlink(b("X+1"), 2, -1));
        assertEquals(0, Index.overlayNlink(null, 2, -1));
        assertEquals("U+0", new String(Index.nlinkValue(0), StandardCharsets.US_ASCII));
        assertEquals("U-2", new String(Index.nlinkValue(-2), StandardCharsets.US_ASCII));
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.US_ASCII); }
}
