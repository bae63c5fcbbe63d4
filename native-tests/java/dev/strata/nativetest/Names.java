package dev.strata.nativetest;

/** Shows names (Latin-1 strings, one char per byte) readably: bytes outside printable ASCII become \xNN. */
public final class Names {
    private Names() {}

    public static String show(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c < 0x7f && c != '\\') b.append(c);
            else if (c == '\\') b.append("\\\\");
            else b.append(String.format("\\x%02x", c & 0xff));
        }
        if (b.length() > 160) return b.substring(0, 60) + "...(" + s.length() + " bytes)..." + b.substring(b.length() - 60);
        return b.toString();
    }

    public static String showBytes(byte[] v) {
        StringBuilder b = new StringBuilder();
        for (byte x : v) {
            int c = x & 0xff;
            if (c >= 0x20 && c < 0x7f && c != '\\') b.append((char) c);
            else b.append(String.format("\\x%02x", c));
        }
        return b.toString();
    }

    /** A string whose chars are the given bytes. */
    public static String bytes(int... bs) {
        StringBuilder b = new StringBuilder();
        for (int x : bs) b.append((char) (x & 0xff));
        return b.toString();
    }
}
