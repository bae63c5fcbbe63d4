package dev.strata.fuse.kernel;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A worker's buffers give back their pages past Buffers.KEEP after large requests and replies (issue
 * 14): what is dropped reads back as zeros, what is kept keeps its bytes, and the reply buffer is never
 * dropped while its worker serves a request.
 */
class BuffersTest {
    static final int FAR = 512 * 1024; // well past KEEP, in both buffers

    /** Resident kB of this process's mapping that starts at addr (/proc/self/smaps). */
    static long residentKb(long addr) throws IOException {
        String head = Long.toHexString(addr) + "-";
        boolean at = false;
        for (String l : Files.readAllLines(Path.of("/proc/self/smaps"), StandardCharsets.ISO_8859_1)) {
            if (l.matches("^[0-9a-f]+-[0-9a-f]+ .*")) at = l.startsWith(head);
            else if (at && l.startsWith("Rss:")) return Long.parseLong(l.replaceAll("[^0-9]", ""));
        }
        throw new AssertionError("no mapping at " + head);
    }

    @Test void theReplyTailGoesAtRestButNotWhileServing() throws IOException {
        Buffers b = new Buffers();
        try {
            assertTrue(Rest.BUFFERS.contains(b), "the rest passes see it");
            b.serving();
            b.out.putByte(0, (byte) 7);
            b.out.putByte(FAR, (byte) 9);
            b.replied(FAR + 1);
            b.dropReplyTail(); // a rest pass while the worker serves: nothing happens
            assertEquals(9, b.out.getByte(FAR), "not dropped while the worker serves");
            b.served();
            long before = residentKb(b.in.address());
            b.dropReplyTail();
            // resident size first: reading a dropped page back may map a page again (a kernel without a
            // shared zero page, as on some virtual machines, gives it a page of its own)
            assertTrue(residentKb(b.in.address()) < before, "fewer pages resident after the drop");
            assertEquals(0, b.out.getByte(FAR), "the tail was dropped (reads back as zeros)");
            assertEquals(7, b.out.getByte(0), "the first KEEP bytes stay");
            b.out.putByte(FAR, (byte) 5);
            b.dropReplyTail(); // no large reply since: nothing to drop
            assertEquals(5, b.out.getByte(FAR));
        } finally {
            b.release();
        }
        assertFalse(Rest.BUFFERS.contains(b), "a released worker's buffers are out of the rest's set");
    }

    @Test void theRequestTailIsTheWorkersToDrop() {
        Buffers b = new Buffers();
        try {
            b.received(4096);
            assertFalse(b.requestTail(), "a small request leaves nothing to give back");
            b.in.putByte(0, (byte) 3);
            b.in.putByte(FAR, (byte) 4);
            b.received(FAR + 1);
            assertTrue(b.requestTail());
            b.dropReplyTail(); // the rest passes leave the request buffer alone (the kernel writes it in read(2))
            assertEquals(4, b.in.getByte(FAR));
            b.dropRequestTail();
            assertFalse(b.requestTail());
            assertEquals(0, b.in.getByte(FAR));
            assertEquals(3, b.in.getByte(0));
        } finally {
            b.release();
        }
    }

    @Test void aTrimKeepsTheFirstPageOfEach() throws IOException {
        Buffers b = new Buffers();
        try {
            b.serving();
            for (int off = 0; off < Buffers.KEEP; off += 4096) { // within KEEP: what the other drops keep
                b.in.putByte(off, (byte) 1);
                b.out.putByte(off, (byte) 2);
            }
            b.received(100);
            long before = residentKb(b.in.address());
            b.trim();
            // 7 pages of each went
            assertTrue(residentKb(b.in.address()) <= before - 48, "the pages past the first went: " + before + " kB before");
            assertEquals(1, b.in.getByte(0));
            assertEquals(2, b.out.getByte(0));
            assertEquals(0, b.in.getByte(4096), "the request buffer's second page reads back as zeros");
            assertEquals(0, b.out.getByte(8192), "the reply buffer's third page reads back as zeros");
            assertFalse(b.requestTail());
            b.served();
        } finally {
            b.release();
        }
    }
}
