package dev.strata.inspect;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.inspect.Differ.Change;
import dev.strata.posix.Names;

import java.util.List;

/** Renders the changes of {@link Differ}: "A /path" lines ("R /new (from /old)"), or JSON. */
public final class DiffReport {
    private DiffReport() {}

    public static String text(List<Change> changes) {
        StringBuilder sb = new StringBuilder();
        for (Change c : changes) {
            sb.append(c.kind()).append(' ').append(Names.display(c.path()));
            if (c.from() != null) sb.append(" (from ").append(Names.display(c.from())).append(')');
            sb.append('\n');
        }
        return sb.toString();
    }

    public static byte[] json(List<Change> changes) {
        ObjectNode o = Json.object();
        ArrayNode a = o.putArray("changes");
        for (Change c : changes) {
            ObjectNode x = a.addObject();
            x.put("kind", c.kind().name());
            Json.putName(x, "path", c.path());
            x.put("type", c.type());
            if (c.oldType() != null) x.put("old_type", c.oldType());
            if (c.from() != null) Json.putName(x, "from", c.from());
            if (!c.why().isEmpty()) {
                ArrayNode w = x.putArray("why");
                c.why().forEach(w::add);
            }
        }
        return Json.bytes(o);
    }
}
