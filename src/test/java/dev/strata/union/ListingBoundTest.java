package dev.strata.union;

import dev.strata.options.MountOptions;
import dev.strata.posix.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A merged listing is bounded ({@link Readdir#maxListing}): past it readdir fails with ENOMEM, and the engine goes on. */
class ListingBoundTest {
    @TempDir Path tmp;
    Union u;
    int saved = Readdir.maxListing;

    @AfterEach void close() {
        Readdir.maxListing = saved;
        if (u != null) u.close();
    }

    @Test void aListingPastTheBoundFailsWithEnomem() throws Exception {
        Path l1 = Files.createDirectories(tmp.resolve("l1/big")), l2 = Files.createDirectories(tmp.resolve("l2/big"));
        Files.createDirectories(tmp.resolve("l1/small"));
        for (int i = 0; i < 60; i++) Files.writeString(l1.resolve("a" + i), "");
        for (int i = 0; i < 60; i++) Files.writeString(l2.resolve("b" + i), "");
        for (int i = 0; i < 10; i++) Files.writeString(tmp.resolve("l1/small/s" + i), "");
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(tmp.resolve("l1"), tmp.resolve("l2"));
        u = Union.open(b.build(), null);
        Readdir.maxListing = 100;
        int[] err = new int[1];
        u.list("/big", err);
        assertEquals(-Errno.ENOMEM, err[0], "122 entries with a bound of 100");
        assertEquals(10, u.list("/small", err).size());
        assertEquals(0, err[0]);
        Readdir.maxListing = 200;
        assertEquals(120, u.list("/big", err).size());
        assertEquals(0, err[0]);
    }

    @Test void whiteoutsCountToo() throws Exception {
        Path l1 = Files.createDirectories(tmp.resolve("l1/d")), l2 = Files.createDirectories(tmp.resolve("l2/d"));
        for (int i = 0; i < 150; i++) Files.writeString(l1.resolve(".wh.x" + i), "");
        Files.writeString(l2.resolve("y"), "");
        MountOptions.Builder b = new MountOptions.Builder();
        b.lowerDirs = List.of(tmp.resolve("l1"), tmp.resolve("l2"));
        u = Union.open(b.build(), null);
        Readdir.maxListing = 100;
        int[] err = new int[1];
        u.list("/d", err);
        assertEquals(-Errno.ENOMEM, err[0]);
    }
}
