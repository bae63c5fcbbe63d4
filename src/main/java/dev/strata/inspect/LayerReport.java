package dev.strata.inspect;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.inspect.LayerAnalysis.Cause;
import dev.strata.inspect.LayerAnalysis.Stats;
import dev.strata.inspect.LayerAnalysis.Wasted;
import dev.strata.layer.Markers.OpaqueForm;
import dev.strata.layer.Markers.WhiteoutForm;
import dev.strata.posix.Names;

import java.util.Locale;

/** Renders a {@link LayerAnalysis} as a table for a terminal (a byte string) or as JSON. */
public final class LayerReport {
    private LayerReport() {}

    public static String text(Stack stack, LayerAnalysis a) {
        StringBuilder sb = new StringBuilder();
        int w = 5;
        for (int i = 0; i < stack.size(); i++) w = Math.max(w, stack.label(i).length());
        sb.append(ExplainReport.pad("LAYER", w))
                .append("    FILES    DIRS   LINKS       BYTES  WHITEOUTS  OPAQUE      WASTED  DIRECTORY\n");
        long files = 0;
        for (Stats s : a.layers) {
            files += s.files;
            sb.append(ExplainReport.pad(stack.label(s.layer), w))
                    .append(String.format(Locale.ROOT, "  %7d  %6d  %6d  %10s  %9d  %6d  %10s  ", s.files, s.dirs,
                            s.symlinks, human(s.bytes), s.whiteoutCount(), s.opaqueCount(), human(s.wastedBytes)))
                    .append(Names.display(stack.path(s.layer)));
            if (s.unreadable > 0) sb.append("  (").append(s.unreadable).append(" unreadable directories not counted)");
            sb.append('\n');
        }
        long total = a.totalBytes(), wasted = a.wastedBytes();
        sb.append('\n').append(String.format(Locale.ROOT, "total: %d files, %s in %d layers; %s (%s) invisible in the merged view;"
                        + " efficiency %s\n", files, human(total), stack.size(), human(wasted),
                percent(total == 0 ? 0 : (double) wasted / total), percent(a.efficiency())));
        sb.append("(wasted: bytes of a layer that layers above override, white out or hide under an opaque directory;\n"
                + " efficiency: visible bytes / all bytes)\n");
        if (!a.largest.isEmpty()) {
            sb.append("\nlargest invisible files:\n");
            for (Wasted x : a.largest) {
                sb.append(String.format(Locale.ROOT, "  %10s  %s  ", human(x.size()), ExplainReport.pad(stack.label(x.layer()), w)))
                        .append(Names.displayPath(x.rel())).append("  (").append(x.cause().label).append(": ")
                        .append(stack.label(x.byLayer())).append(")\n");
            }
        }
        return sb.toString();
    }

    public static byte[] json(Stack stack, LayerAnalysis a) {
        ObjectNode o = Json.object();
        ArrayNode arr = o.putArray("layers");
        for (Stats s : a.layers) {
            ObjectNode x = arr.addObject();
            x.put("index", s.layer);
            x.put("label", stack.label(s.layer));
            Json.putName(x, "dir", stack.path(s.layer));
            x.put("files", s.files);
            x.put("dirs", s.dirs);
            x.put("symlinks", s.symlinks);
            x.put("others", s.others);
            x.put("bytes", s.bytes);
            ObjectNode wo = x.putObject("whiteouts");
            wo.put("total", s.whiteoutCount());
            for (WhiteoutForm f : WhiteoutForm.values()) wo.put(f.name().toLowerCase(Locale.ROOT), s.whiteouts[f.ordinal()]);
            ObjectNode op = x.putObject("opaque_dirs");
            op.put("total", s.opaqueCount());
            for (OpaqueForm f : OpaqueForm.values()) op.put(f.name().toLowerCase(Locale.ROOT), s.opaque[f.ordinal()]);
            x.put("visible_bytes", s.visibleBytes);
            x.put("wasted_bytes", s.wastedBytes);
            ObjectNode wb = x.putObject("wasted_by");
            for (Cause c : Cause.values()) wb.put(c.name().toLowerCase(Locale.ROOT), s.wastedBy[c.ordinal()]);
            if (s.unreadable > 0) x.put("unreadable_dirs", s.unreadable);
        }
        o.put("total_bytes", a.totalBytes());
        o.put("visible_bytes", a.visibleBytes());
        o.put("wasted_bytes", a.wastedBytes());
        o.put("efficiency", Math.round(a.efficiency() * 10000) / 10000.0);
        ArrayNode big = o.putArray("largest_invisible");
        for (Wasted x : a.largest) {
            ObjectNode b = big.addObject();
            b.put("layer", x.layer());
            Json.putName(b, "path", "/" + x.rel());
            b.put("size", x.size());
            b.put("cause", x.cause().name().toLowerCase(Locale.ROOT));
            b.put("by_layer", x.byLayer());
        }
        return Json.bytes(o);
    }

    /** 1536 -> "1.5 KiB"; below 1 KiB: "512 B". */
    public static String human(long n) {
        if (n < 1024) return n + " B";
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** 0.25 -> "25.0%"; a value that is not 0 or 1 never shows as "0.0%" or "100.0%". */
    static String percent(double f) {
        if (f > 0 && f < 0.0005) return "<0.1%";
        if (f < 1 && f > 0.9995) return ">99.9%";
        return String.format(Locale.ROOT, "%.1f%%", f * 100);
    }
}
