package dev.strata.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class RecordJsonTest {
    /** What the daemon writes, Jackson (explain, diff) reads back as the same strings and numbers. */
    @Test void writtenRecordsReadBackThroughJackson() throws Exception {
        String odd = "/m/q\"uote\\back\nnl\u0001ctl\u00e9\u00ff:,";
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("mountpoint", odd);
        o.put("lowerdirs", List.of("/a", odd));
        o.put("upperdir", null);
        o.put("pid", 1234567890123L);
        o.put("lock", "flock");
        byte[] text = RecordJson.write(o);
        JsonNode n = Json.MAPPER.readTree(text);
        assertEquals(odd, n.get("mountpoint").asText());
        assertEquals(odd, n.get("lowerdirs").get(1).asText());
        assertEquals("/a", n.get("lowerdirs").get(0).asText());
        assertTrue(n.get("upperdir").isNull());
        assertEquals(1234567890123L, n.get("pid").asLong());
        assertEquals(o, RecordJson.read(text));
    }

    /** Records written by Jackson (older strata) are read the same way. */
    @Test void readsJacksonOutput() throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("mountpoint", "/m\u00e9\t\"x\"");
        o.put("lowerdirs", Arrays.asList("/l1", "/l2"));
        o.put("workdir", null);
        o.put("pid", 42L);
        o.put("start_time", 99L);
        byte[] text = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(o);
        assertEquals(o, RecordJson.read(text));
        assertEquals(Map.of("a", List.of(true, false), "b", 1.5), RecordJson.read("{\"a\":[true,false],\"b\":1.5}".getBytes(StandardCharsets.UTF_8)));
    }

    @Test void refusesWhatIsNotJson() {
        for (String bad : new String[] {"", "{", "{\"pid\":12", "{\"a\" 1}", "[1,]x", "\"open", "{} {}", "nul"}) {
            assertThrows(IllegalArgumentException.class, () -> RecordJson.read(bad.getBytes(StandardCharsets.UTF_8)), bad);
        }
    }
}
