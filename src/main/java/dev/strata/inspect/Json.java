package dev.strata.inspect;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.posix.Names;


/** JSON output helpers: names go through {@link Names#jsonText} with a {@code _b64} sibling when needed. */
final class Json {
    private Json() {}

    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    static ObjectNode object() { return MAPPER.createObjectNode(); }

    /** Puts a name or path (a byte string) under {@code field}, and {@code field_b64} if it is not UTF-8. */
    static ObjectNode putName(ObjectNode o, String field, String byteString) {
        o.put(field, Names.jsonText(byteString));
        String b64 = Names.jsonBytes(byteString);
        if (b64 != null) o.put(field + "_b64", b64);
        return o;
    }

    /** Puts a message (a byte string made by {@link Names#display} and ASCII): always valid UTF-8. */
    static ObjectNode putText(ObjectNode o, String field, String byteString) {
        o.put(field, Names.jsonText(byteString));
        return o;
    }

    static byte[] bytes(Object tree) {
        try {
            byte[] b = MAPPER.writeValueAsBytes(tree);
            byte[] out = new byte[b.length + 1];
            System.arraycopy(b, 0, out, 0, b.length);
            out[b.length] = '\n';
            return out;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
