package dev.strata.inspect;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StackSpecTest {
    @TempDir Path tmp;

    @Test void lowerdirIsTopFirstAndEscapesWork() {
        StackSpec s = StackSpec.parse("/a:/b\\:c:/d", "/u");
        assertEquals(List.of(Path.of("/a"), Path.of("/b:c"), Path.of("/d")), s.lowerdirs());
        assertEquals(Path.of("/u"), s.upperdir());
    }

    @Test void mountOptions() {
        StackSpec s = StackSpec.parseMountOptions("rw,lowerdir=/l1:/l2,upperdir=/up\\,x,workdir=/w,xino=off");
        assertEquals(List.of(Path.of("/l1"), Path.of("/l2")), s.lowerdirs());
        assertEquals(Path.of("/up,x"), s.upperdir());
        assertNull(StackSpec.parseMountOptions("lowerdir=/only").upperdir());
    }

    @Test void mistakes() {
        assertTrue(assertThrows(InspectException.class, () -> StackSpec.parse("", null)).getMessage().contains("no lower"));
        assertTrue(assertThrows(InspectException.class, () -> StackSpec.parse("/a::/b", null)).getMessage().contains("data-only"));
        assertTrue(assertThrows(InspectException.class, () -> StackSpec.parse("/a:", null)).getMessage().contains("empty layer"));
        assertTrue(assertThrows(InspectException.class, () -> StackSpec.parseMountOptions("upperdir=/u")).getMessage()
                .contains("no lowerdir"));
    }

    @Test void openingChecksEveryDirectory() throws Exception {
        Path ok = Files.createDirectory(tmp.resolve("ok"));
        Path file = Files.writeString(tmp.resolve("file"), "x");
        InspectException missing = assertThrows(InspectException.class,
                () -> Stack.open(StackSpec.parse(ok + ":" + tmp.resolve("nope"), null)));
        assertEquals("lower layer " + tmp.resolve("nope") + ": No such file or directory", missing.getMessage());
        InspectException notDir = assertThrows(InspectException.class,
                () -> Stack.open(StackSpec.parse(ok.toString(), file.toString())));
        assertEquals("upper layer " + file + ": Not a directory", notDir.getMessage());
        try (Stack s = Stack.open(StackSpec.parse(ok + ":" + ok, ok.toString()))) {
            assertEquals(3, s.size());
            assertEquals("upper", s.label(0));
            assertEquals("lower2", s.label(2));
            assertEquals(List.of(1, 2), java.util.Arrays.stream(s.lowers()).boxed().toList());
        }
    }
}
