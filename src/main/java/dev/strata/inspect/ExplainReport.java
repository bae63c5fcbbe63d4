package dev.strata.inspect;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.strata.inspect.Explanation.DirLayer;
import dev.strata.inspect.Explanation.LayerRef;
import dev.strata.inspect.Explanation.Say;
import dev.strata.inspect.Explanation.Step;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.util.Locale;

/** Renders an {@link Explanation} for a terminal (a byte string) or as JSON. */
public final class ExplainReport {
    private ExplainReport() {}

    public static String text(Explanation e) {
        StringBuilder sb = new StringBuilder();
        sb.append("path: ").append(Names.display(e.path())).append("\n\n");
        sb.append("layers, top first:\n");
        int w = 0;
        for (LayerRef r : e.layers) w = Math.max(w, r.label().length());
        for (Say s : e.says) {
            sb.append("  ").append(pad(s.layer().label(), w)).append("  ").append(Names.display(s.layer().path())).append('\n');
            String indent = "  " + " ".repeat(w) + "    ";
            sb.append(indent).append(rawText(s.raw())).append('\n');
            if (!s.roleText().isEmpty()) sb.append(indent).append("=> ").append(s.roleText()).append('\n');
        }
        if (!e.steps.isEmpty()) {
            sb.append("\nlookup, component by component:\n");
            int pw = 0;
            for (Step st : e.steps) pw = Math.max(pw, Names.displayPath(st.rel()).length());
            pw = Math.min(pw, 40);
            for (Step st : e.steps) {
                sb.append("  ").append(pad(Names.displayPath(st.rel()), pw)).append("  ").append(stepText(e, st)).append('\n');
            }
        }
        sb.append("\nverdict: ").append(e.verdictText).append('\n');
        if (e.mergeEnd != null) sb.append("merge: ").append(e.mergeEnd).append('\n');
        if (e.dir != null) {
            sb.append("\ndirectory listing: ").append(e.dir.visible()).append(e.dir.visible() == 1 ? " entry" : " entries")
                    .append(" visible\n");
            sb.append("  ").append(pad("layer", w)).append("  entries  shown  merged  hidden  whiteouts\n");
            for (DirLayer d : e.dir.layers()) {
                sb.append("  ").append(pad(d.layer().label(), w));
                if (d.errno() != 0) {
                    sb.append("  cannot read: ").append(Posix.strerror(d.errno())).append('\n');
                    continue;
                }
                sb.append(String.format(Locale.ROOT, "  %7d  %5d  %6d  %6d  %9d", d.entries(), d.shown(), d.merged(),
                        d.hidden(), d.whiteouts()));
                if (d.opaqueFile()) sb.append("  (+ " + dev.strata.layer.Markers.OPAQUE_FILE + ")");
                sb.append('\n');
            }
            sb.append("  (shown: listed from that layer; merged: a directory that a layer above also has;\n"
                    + "   hidden: covered by a layer above; whiteouts: names it hides below)\n");
        }
        return sb.toString();
    }

    static String rawText(Explanation.Raw raw) {
        String t = rawText0(raw);
        return raw.redirectedRel() == null ? t : "at " + Names.displayPath(raw.redirectedRel()) + " (followed redirect): " + t;
    }

    private static String rawText0(Explanation.Raw raw) {
        Probe p = raw.probe();
        if (raw.ancestorRel() == null) return p.describe();
        String at = Names.displayPath(raw.ancestorRel());
        switch (p.kind()) {
            case ABSENT: return "absent (no " + at + " here)";
            case WHITEOUT: return "absent (" + at + " is a whiteout here: " + p.whiteout().label + ")";
            case NONDIR: return "absent (" + at + " is a " + p.node().typeName() + " here)";
            default: return "cannot look at " + at + ": " + Posix.strerror(p.errno());
        }
    }

    static String stepText(Explanation e, Step st) {
        Lookup lk = st.lookup();
        if (lk == null) return "marker name: not looked up";
        StringBuilder r = new StringBuilder(resultText(e, lk));
        for (Lookup.Redirect d : lk.redirects) r.append("; ").append(redirectText(e, d));
        return r.toString();
    }

    /** A redirect followed: "redirected from /a by upper (overlay.redirect=\"a\"): the layers below are asked for /a". */
    static String redirectText(Explanation e, Lookup.Redirect d) {
        return "redirected by " + label(e, d.layer()) + " (overlay.redirect=\"" + Names.display(d.value())
                + "\"): the layers below are asked for " + Names.display(d.next().startsWith("/") ? d.next() : "the name " + d.next());
    }

    private static String resultText(Explanation e, Lookup lk) {
        switch (lk.result) {
            case DIR: {
                String s = lk.merge.length > 1 ? "directory, merged from " + labels(e, lk.merge)
                        : "directory of " + label(e, lk.top) + " only";
                if (lk.stop == Lookup.Stop.OPAQUE) s += "; opaque in " + label(e, lk.stopLayer);
                else if (lk.stop == Lookup.Stop.WHITEOUT) s += "; a whiteout in " + label(e, lk.stopLayer) + " ends the merge";
                else if (lk.stop == Lookup.Stop.NONDIR_BELOW_DIR) {
                    s += "; a " + lk.probes.get(lk.probes.size() - 1).node().typeName() + " in " + label(e, lk.stopLayer)
                            + " ends the merge";
                }
                return s;
            }
            case NONDIR: return lk.topProbe().node().typeName() + " of " + label(e, lk.top)
                    + (lk.dataLayer >= 0 ? ", metadata only (overlay.metacopy), data from " + label(e, lk.dataLayer) : "");
            case WHITEOUT: return "whited out in " + label(e, lk.top) + " (" + lk.topProbe().whiteout().label + ")";
            case ABSENT: return "absent from every layer asked (" + labels(e, lk.parentMerge) + ")";
            default: return "error in " + label(e, lk.stopLayer);
        }
    }

    public static byte[] json(Explanation e) { return Json.bytes(tree(e)); }

    static ObjectNode tree(Explanation e) {
        ObjectNode o = Json.object();
        Json.putName(o, "path", e.path());
        ArrayNode layers = o.putArray("layers");
        for (Say s : e.says) {
            ObjectNode l = layers.addObject();
            l.put("index", s.layer().index());
            l.put("label", s.layer().label());
            Json.putName(l, "dir", s.layer().path());
            ObjectNode has = l.putObject("has");
            Explanation.Raw raw = s.raw();
            if (raw.ancestorRel() != null) Json.putName(has, "blocked_at", "/" + raw.ancestorRel());
            if (raw.redirectedRel() != null) Json.putName(has, "at", "/" + raw.redirectedRel());
            probe(has, raw.probe());
            l.put("role", s.role().name().toLowerCase(Locale.ROOT));
            Json.putText(l, "note", s.roleText());
        }
        ArrayNode steps = o.putArray("lookup");
        for (Step st : e.steps) {
            ObjectNode so = steps.addObject();
            Json.putName(so, "path", "/" + st.rel());
            Lookup lk = st.lookup();
            if (lk == null) { so.put("result", "marker"); continue; }
            so.put("result", lk.result.name().toLowerCase(Locale.ROOT));
            if (lk.top >= 0) so.put("layer", lk.top);
            if (lk.result == Lookup.Result.DIR) {
                ArrayNode m = so.putArray("merged");
                for (int l : lk.merge) m.add(l);
            }
            so.put("stop", lk.stop.name().toLowerCase(Locale.ROOT));
            if (lk.stopLayer >= 0) so.put("stop_layer", lk.stopLayer);
            if (!lk.redirects.isEmpty()) {
                ArrayNode rd = so.putArray("redirects");
                for (Lookup.Redirect d : lk.redirects) {
                    ObjectNode ro = rd.addObject();
                    ro.put("layer", d.layer());
                    Json.putName(ro, "redirect", d.value());
                    Json.putName(ro, "next", d.next());
                }
            }
            ArrayNode na = so.putArray("not_asked");
            for (int l : lk.notAsked()) na.add(l);
            Json.putText(so, "text", stepText(e, st));
        }
        ObjectNode v = o.putObject("verdict");
        v.put("kind", e.verdict.name().toLowerCase(Locale.ROOT));
        if (e.verdictLayer >= 0) v.put("layer", e.verdictLayer);
        Json.putText(v, "text", e.verdictText);
        if (e.mergeEnd != null) Json.putText(v, "merge", e.mergeEnd);
        if (e.dir != null) {
            ObjectNode d = o.putObject("directory");
            d.put("visible_entries", e.dir.visible());
            ArrayNode dl = d.putArray("layers");
            for (DirLayer x : e.dir.layers()) {
                ObjectNode lo = dl.addObject();
                lo.put("layer", x.layer().index());
                if (x.errno() != 0) { lo.put("error", Posix.strerror(x.errno())); continue; }
                lo.put("entries", x.entries());
                lo.put("shown", x.shown());
                lo.put("merged", x.merged());
                lo.put("hidden", x.hidden());
                lo.put("whiteouts", x.whiteouts());
                lo.put("opq_file", x.opaqueFile());
            }
        }
        return o;
    }

    static void probe(ObjectNode o, Probe p) {
        o.put("state", p.kind().name().toLowerCase(Locale.ROOT));
        if (p.node() != null) {
            Node n = p.node();
            o.put("type", n.typeKey());
            o.put("mode", String.format(Locale.ROOT, "%04o", n.perm()));
            o.put("uid", n.uid());
            o.put("gid", n.gid());
            if (n.isReg()) o.put("size", n.size());
            if (n.isLink() && n.linkTarget() != null) Json.putName(o, "target", n.linkTarget());
        }
        if (p.whiteout() != null) {
            o.put("whiteout_form", p.whiteout().name().toLowerCase(Locale.ROOT));
            o.put("whiteout_form_label", p.whiteout().label);
        }
        if (p.opaque() != null) {
            o.put("opaque_form", p.opaque().name().toLowerCase(Locale.ROOT));
            o.put("opaque_form_label", p.opaque().label);
        }
        if (p.errno() != 0) o.put("error", Posix.strerror(p.errno()));
    }

    private static String label(Explanation e, int l) { return e.layers.get(l).label(); }

    private static String labels(Explanation e, int[] ls) {
        StringBuilder sb = new StringBuilder();
        for (int l : ls) sb.append(sb.length() > 0 ? ", " : "").append(label(e, l));
        return sb.toString();
    }

    static String pad(String s, int w) { return s.length() >= w ? s : s + " ".repeat(w - s.length()); }
}
