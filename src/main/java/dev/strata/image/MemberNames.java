package dev.strata.image;

/** Member names of a layer tar: cleaned relative to the layer root (hostile forms refused), split, shown in messages. */
final class MemberNames {
    private MemberNames() {}

    /** A member name made relative and clean ("" is the layer root); hostile forms are refused. */
    static String clean(String raw, String what, String ctx, String where) {
        if (raw.indexOf('\0') >= 0) throw hostile(where, what + " '" + show(raw) + "'" + ctx + " contains a NUL byte");
        if (raw.length() > LayerExtractor.MAX_NAME) {
            throw hostile(where, what + " '" + show(raw.substring(0, 60)) + "...'" + ctx + " is longer than " + LayerExtractor.MAX_NAME + " bytes");
        }
        if (raw.startsWith("/")) throw hostile(where, "absolute " + what + " '" + show(raw) + "'" + ctx);
        StringBuilder sb = new StringBuilder(raw.length());
        int i = 0, n = raw.length();
        while (i < n) {
            int j = raw.indexOf('/', i);
            if (j < 0) j = n;
            String c = raw.substring(i, j);
            if (c.equals("..")) throw hostile(where, what + " '" + show(raw) + "'" + ctx + " has a '..' component");
            if (!c.isEmpty() && !c.equals(".")) {
                if (sb.length() > 0) sb.append('/');
                sb.append(c);
            }
            i = j + 1;
        }
        return sb.toString();
    }

    static String parentOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? "" : rel.substring(0, i);
    }

    static String nameOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? rel : rel.substring(i + 1);
    }

    /** A name for a one-line message: control characters escaped, other bytes left as they are. */
    static String show(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                if (b == null) b = new StringBuilder(s.substring(0, i));
                b.append(String.format("\\x%02x", (int) c));
            } else if (b != null) {
                b.append(c);
            }
        }
        String r = b == null ? s : b.toString();
        return r.length() > 300 ? r.substring(0, 297) + "..." : r;
    }

    /** The one-line refusal of a hostile archive. */
    static ImageException hostile(String where, String what) {
        return new ImageException("refusing hostile archive: " + where + ": " + what);
    }
}
