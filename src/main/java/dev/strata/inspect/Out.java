package dev.strata.inspect;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Where reports are printed: standard output, byte-transparent, so names keep their bytes. */
public final class Out {
    private Out() {}

    /** Prints a report given as a byte string (see {@link Names}) to standard output. */
    public static void print(String byteString) {
        PrintStream ps = System.out;
        byte[] b = byteString.getBytes(StandardCharsets.ISO_8859_1);
        ps.write(b, 0, b.length);
        ps.flush();
    }

    /** Prints UTF-8 bytes (a JSON document) to standard output. */
    public static void printBytes(byte[] b) {
        System.out.write(b, 0, b.length);
        System.out.flush();
    }
}
