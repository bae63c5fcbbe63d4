package dev.strata.image;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.io.IOException;
import java.io.InputStream;

/** The shared Jackson mapper and small helpers for reading image metadata. */
final class Json {
    private Json() {}

    static final ObjectMapper MAPPER = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false)
            .configure(SerializationFeature.INDENT_OUTPUT, true)
            .setSerializationInclusion(JsonInclude.Include.NON_NULL);

    /** Reads at most {@code max} bytes; more is an ImageException naming {@code what}. */
    static byte[] readCapped(InputStream in, long max, String what) throws IOException {
        try (InputStream s = in) {
            byte[] b = s.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, max + 1));
            if (b.length > max) throw new ImageException(what + " is larger than " + Human.bytes(max) + ", refusing it");
            return b;
        }
    }

    static JsonNode parse(byte[] b, String what) {
        try {
            JsonNode n = MAPPER.readTree(b);
            if (n == null || n.isMissingNode()) throw new ImageException(what + " is empty");
            return n;
        } catch (JsonProcessingException e) {
            throw new ImageException(what + " is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ImageException(what + " cannot be read: " + e.getMessage());
        }
    }

    static String text(JsonNode n, String field) {
        JsonNode v = n == null ? null : n.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }
}
