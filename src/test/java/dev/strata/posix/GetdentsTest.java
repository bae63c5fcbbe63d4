package dev.strata.posix;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The getdents64 parser: real directories read whole; malformed records end with EIO, never loop. */
class GetdentsTest {
    @TempDir Path tmp;

    @Test void readsEveryEntry() throws Exception {
        TreeSet<String> want = new TreeSet<>(List.of(".", ".."));
        for (int i = 0; i < 3000; i++) {
            String n = "file-with-a-longish-name-" + i;
            Files.writeString(tmp.resolve(n), "");
            want.add(n);
        }
        int fd = Posix.openat(Posix.AT_FDCWD, tmp.toString(), Posix.O_RDONLY | Posix.O_DIRECTORY, 0);
        TreeSet<String> got = new TreeSet<>();
        try {
            assertEquals(0, Getdents.read(fd, (ino, dt, name) -> got.add(name) || true));
        } finally {
            Posix.close(fd);
        }
        assertEquals(want, got);
    }

    private static Pointer record(Pointer p, int off, int reclen, String name) {
        p.putLong(off, 7);
        p.putLong(off + 8, 0);
        p.putShort(off + 16, (short) reclen);
        p.putByte(off + 18, (byte) 8);
        byte[] b = name.getBytes(Posix.NAMES);
        p.put(off + 19, b, 0, b.length);
        p.putByte(off + 19 + b.length, (byte) 0);
        return p;
    }

    @Test @Timeout(10) void zeroRecordLengthIsEio() {
        Pointer p = Memory.allocateDirect(Posix.RT, 256);
        record(p, 0, 24, "a");
        record(p, 24, 0, "b");
        List<String> names = new ArrayList<>();
        assertEquals(-Errno.EIO, Getdents.parse(p, 48, (ino, dt, n) -> names.add(n)));
        assertEquals(List.of("a"), names);
    }

    @Test void recordRunningPastTheDataIsEio() {
        Pointer p = Memory.allocateDirect(Posix.RT, 256);
        record(p, 0, 24, "a");
        record(p, 24, 200, "b");
        assertEquals(-Errno.EIO, Getdents.parse(p, 48, (ino, dt, n) -> true));
        assertEquals(-Errno.EIO, Getdents.parse(record(p, 0, 24, "a"), 30, (ino, dt, n) -> true), "a header cut short");
        assertEquals(1, Getdents.parse(record(p, 0, 24, "a"), 24, (ino, dt, n) -> true));
    }
}
