package dev.strata.inspect;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The little JSON the mount registry writes and checks from inside the mount daemon, without loading
 * a JSON library there (Jackson's ~430 classes are ~6 MB of the shared daemon's memory: issue 14).
 * Writes an object of strings, numbers, null and arrays of strings; reads any JSON text into maps,
 * lists, strings, longs (numbers that are not whole: doubles), booleans and null.
 */
final class RecordJson {
    private RecordJson() {}

    /** Pretty-printed UTF-8 JSON of {@code o}: values are String, Long/Integer, null or List of String. */
    static byte[] write(Map<String, Object> o) {
        StringBuilder b = new StringBuilder("{\n");
        int i = 0;
        for (Map.Entry<String, Object> e : o.entrySet()) {
            b.append("  ");
            string(b, e.getKey());
            b.append(" : ");
            Object v = e.getValue();
            if (v instanceof List) {
                b.append("[ ");
                int j = 0;
                for (Object s : (List<?>) v) {
                    if (j++ > 0) b.append(", ");
                    string(b, (String) s);
                }
                b.append(" ]");
            } else if (v instanceof String) {
                string(b, (String) v);
            } else {
                b.append(v); // a number, or null
            }
            b.append(++i < o.size() ? ",\n" : "\n");
        }
        return b.append('}').toString().getBytes(StandardCharsets.UTF_8);
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        b.append('"');
    }

    /** Parses UTF-8 JSON text; throws IllegalArgumentException if it is not JSON. */
    static Object read(byte[] text) {
        Parser p = new Parser(new String(text, StandardCharsets.UTF_8));
        Object v = p.value();
        p.space();
        if (p.i != p.s.length()) throw p.bad();
        return v;
    }

    private static final class Parser {
        final String s;
        int i;

        Parser(String s) { this.s = s; }

        IllegalArgumentException bad() { return new IllegalArgumentException("not JSON at offset " + i); }

        void space() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++;
        }

        char next() {
            space();
            if (i >= s.length()) throw bad();
            return s.charAt(i);
        }

        void expect(char c) {
            if (next() != c) throw bad();
            i++;
        }

        Object value() {
            char c = next();
            if (c == '{') {
                i++;
                Map<String, Object> m = new LinkedHashMap<>();
                if (next() == '}') { i++; return m; }
                while (true) {
                    if (next() != '"') throw bad();
                    String k = str();
                    expect(':');
                    m.put(k, value());
                    if (next() == ',') { i++; continue; }
                    expect('}');
                    return m;
                }
            }
            if (c == '[') {
                i++;
                List<Object> l = new ArrayList<>();
                if (next() == ']') { i++; return l; }
                while (true) {
                    l.add(value());
                    if (next() == ',') { i++; continue; }
                    expect(']');
                    return l;
                }
            }
            if (c == '"') return str();
            for (String w : new String[] {"true", "false", "null"}) {
                if (s.startsWith(w, i)) {
                    i += w.length();
                    return w.equals("null") ? null : Boolean.valueOf(w);
                }
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String n = s.substring(start, i);
            try {
                return n.matches("-?\\d+") ? (Object) Long.valueOf(n) : (Object) Double.valueOf(n);
            } catch (NumberFormatException e) {
                throw bad();
            }
        }

        String str() {
            i++; // the opening quote
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw bad();
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                if (i >= s.length()) throw bad();
                char e = s.charAt(i++);
                switch (e) {
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw bad();
                        try {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw bad();
                        }
                        i += 4;
                        break;
                    default: b.append(e); // " \ /
                }
            }
        }
    }
}
