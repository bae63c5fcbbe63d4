package dev.strata.union;

import dev.strata.posix.Errno;
import org.junit.jupiter.api.Test;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The fs-verity verdict on overlay.metacopy values (the kernel's ovl_validate_verity), with digests given
 * as FS_IOC_MEASURE_VERITY gives them: this kernel has no fs-verity (CONFIG_FS_VERITY unset), so the
 * native tests reach only the "no digest on the data file" outcome; the comparison itself is tested here.
 */
class LowerdataTest {
    static byte[] sha256(String s) throws Exception {
        byte[] h = MessageDigest.getInstance("SHA-256").digest(s.getBytes());
        byte[] d = new byte[1 + h.length];
        d[0] = 1; // FS_VERITY_HASH_ALG_SHA256
        System.arraycopy(h, 0, d, 1, h.length);
        return d;
    }

    static int verdict(byte[] v, byte[] actual, boolean require) {
        return Lowerdata.verdict(v, () -> actual, require, new String[1]);
    }

    @Test void structOvlMetacopyLayout() throws Exception {
        byte[] v = Lowerdata.withDigest(sha256("data"));
        // as the kernel writes it (and as `setfattr -v 0x00240001<digest>` makes it by hand)
        assertEquals(36, v.length);
        assertArrayEquals(new byte[]{0, 36, 0, 1}, Arrays.copyOf(v, 4));
        assertArrayEquals(Arrays.copyOfRange(sha256("data"), 1, 33), Arrays.copyOfRange(v, 4, 36));
    }

    @Test void digestMustMatchTheDataFile() throws Exception {
        byte[] v = Lowerdata.withDigest(sha256("data"));
        assertEquals(0, verdict(v, sha256("data"), false));
        assertEquals(0, verdict(v, sha256("data"), true));
        assertEquals(-Errno.EIO, verdict(v, sha256("other"), false), "another digest");
        byte[] sha512 = sha256("data");
        sha512[0] = 2;
        assertEquals(-Errno.EIO, verdict(v, sha512, false), "another algorithm");
        assertEquals(-Errno.EIO, verdict(v, Arrays.copyOf(sha256("data"), 20), false), "another size");
        assertEquals(-Errno.EIO, verdict(v, null, false), "no fs-verity on the data file");
    }

    @Test void noDigestPassesUnlessRequired() {
        AtomicInteger asked = new AtomicInteger();
        Supplier<byte[]> counting = () -> { asked.incrementAndGet(); return null; };
        String[] why = new String[1];
        assertEquals(0, Lowerdata.verdict(new byte[0], counting, false, why));
        assertEquals(-Errno.EIO, Lowerdata.verdict(new byte[0], counting, true, why));
        assertTrue(why[0].contains("verity=require"), why[0]);
        byte[] header = {0, 4, 0, 0};
        assertEquals(0, Lowerdata.verdict(header, counting, false, why));
        byte[] noAlgo = new byte[36];
        noAlgo[1] = 36; // a digest's room, digest_algo 0: no digest
        assertEquals(0, Lowerdata.verdict(noAlgo, counting, false, why));
        assertEquals(-Errno.EIO, Lowerdata.verdict(noAlgo, counting, true, why));
        assertEquals(0, asked.get(), "the data file is not measured without a digest to compare");
    }

    @Test void malformedValues() throws Exception {
        byte[] v = Lowerdata.withDigest(sha256("data"));
        byte[] version = v.clone();
        version[0] = 1;
        assertEquals(-Errno.EIO, verdict(version, sha256("data"), false));
        byte[] len = v.clone();
        len[1] = 35;
        assertEquals(-Errno.EIO, verdict(len, sha256("data"), false));
        assertEquals(-Errno.ERANGE, verdict(new byte[Lowerdata.METACOPY_MAX + 1], sha256("data"), false));
    }
}
