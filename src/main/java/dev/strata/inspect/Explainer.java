package dev.strata.inspect;

import dev.strata.inspect.Explanation.DirLayer;
import dev.strata.inspect.Explanation.DirSummary;
import dev.strata.inspect.Explanation.LayerRef;
import dev.strata.inspect.Explanation.Raw;
import dev.strata.inspect.Explanation.Role;
import dev.strata.inspect.Explanation.Say;
import dev.strata.inspect.Explanation.Step;
import dev.strata.inspect.Explanation.Verdict;
import dev.strata.layer.Layer;
import dev.strata.layer.Markers;
import dev.strata.posix.Names;
import dev.strata.posix.Posix;

import java.util.ArrayList;
import java.util.List;

/**
 * Explains one path of the merged view: walks every component through the stack with the kernel's
 * lookup rules ({@link Lookup}), so a whiteout or an opaque directory at a parent counts too, and
 * records each layer's say. Symbolic links on the way are not followed (the verdict says so).
 */
public final class Explainer {
    private final Stack stack;

    public Explainer(Stack stack) { this.stack = stack; }

    /** Splits a path of the merged view into components: "", "." and ".." are resolved lexically. */
    public static List<String> components(String path) {
        List<String> out = new ArrayList<>();
        for (String c : path.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) { if (!out.isEmpty()) out.remove(out.size() - 1); continue; }
            out.add(c);
        }
        return out;
    }

    public Explanation explain(String path) {
        List<String> comps = components(path);
        String rel = String.join("/", comps);
        int n = stack.size();
        List<LayerRef> refs = new ArrayList<>();
        for (int i = 0; i < n; i++) refs.add(new LayerRef(i, stack.label(i), stack.path(i)));

        Role[] role = new Role[n];
        String[] roleText = new String[n];
        String[] notAsked = new String[n];
        List<Step> steps = new ArrayList<>();

        Lookup cur = Lookup.root(stack, stack.all());
        String parentRel = "";
        Verdict verdict = null;
        int verdictLayer = -1;
        String verdictText = null;
        for (int k = 0; k < comps.size() && verdict == null; k++) {
            String name = comps.get(k);
            String stepRel = Layer.child(parentRel, name);
            boolean last = k == comps.size() - 1;
            if (Markers.isMarkerName(name)) {
                steps.add(new Step(stepRel, null));
                for (int l : cur.merge) {
                    role[l] = Role.MARKER;
                    roleText[l] = "not looked up: " + disp(stepRel) + " has a marker name";
                }
                verdict = Verdict.MARKER;
                verdictText = "gone: names beginning with .wh. are whiteout markers, never shown by strata"
                        + " (kernel overlayfs would show such a file as it is)";
                break;
            }
            Lookup lk = Lookup.run(stack, cur, name);
            steps.add(new Step(stepRel, lk));
            for (Probe p : lk.probes) {
                int l = p.layer();
                switch (p.kind()) {
                    case ABSENT:
                        role[l] = Role.ABSENT;
                        roleText[l] = "";
                        break;
                    case ERROR:
                        role[l] = Role.ERROR;
                        roleText[l] = "error: " + Posix.strerror(p.errno());
                        break;
                    case WHITEOUT:
                        role[l] = Role.WHITEOUT;
                        roleText[l] = last ? "whiteout: hides the name in every layer below"
                                : "its whiteout of " + disp(stepRel) + " hides it in every layer below";
                        break;
                    case DIR:
                        if (last) {
                            role[l] = l == lk.top ? Role.SHOWN : Role.MERGED;
                            roleText[l] = l == lk.top
                                    ? (lk.merge.length > 1 ? "shown: top of the merge (the directory's attributes come from here)" : "shown")
                                    : "merged: its entries are listed too";
                        }
                        break;
                    case NONDIR:
                        if (lk.dataLayer >= 0 && last && l != lk.top) {
                            // below a metadata-only copy: the file with the data, or another metadata-only copy
                            role[l] = l == lk.dataLayer ? Role.DATA : Role.HIDDEN;
                            roleText[l] = l == lk.dataLayer ? "data: reads of the file come from here (the layer above has its metadata only)"
                                    : "hidden: a metadata-only copy too (overlay.metacopy), passed over on the way to the data";
                        } else if (lk.dataLayer >= 0 && last) {
                            role[l] = Role.SHOWN;
                            roleText[l] = "shown: metadata only (overlay.metacopy): owner, mode, times and xattrs from here, the data from "
                                    + stack.label(lk.dataLayer);
                        } else if (lk.result == Lookup.Result.NONDIR) {
                            role[l] = last ? Role.SHOWN : Role.NOT_A_DIR;
                            roleText[l] = last ? "shown"
                                    : "shown at " + disp(stepRel) + ", which is not a directory: the lookup ends";
                        } else {
                            role[l] = Role.IGNORED;
                            String what = p.node().typeName() + ", below the directory of " + stack.label(lk.top)
                                    + ": ignored, and the merge stops here";
                            roleText[l] = last ? "ignored: a " + what
                                    : "not consulted below: " + disp(stepRel) + " here is a " + what;
                        }
                        break;
                    default:
                        throw new AssertionError(p.kind());
                }
            }
            for (int l : lk.notAsked()) {
                role[l] = Role.HIDDEN;
                roleText[l] = (last ? "hidden: " : "hidden (a parent): ") + cause(lk);
                notAsked[l] = "not asked: " + cause(lk);
            }
            switch (lk.result) {
                case DIR:
                    break;
                case NONDIR: {
                    Probe p = lk.topProbe();
                    verdictLayer = lk.top;
                    if (last) {
                        verdict = Verdict.FILE;
                        verdictText = disp(stepRel) + " is the " + p.node().typeName() + " of " + stack.label(lk.top)
                                + " (" + Names.display(stack.path(lk.top) + "/" + lk.pathIn(lk.top)) + ")";
                        if (lk.dataLayer >= 0) {
                            verdictText += ", a metadata-only copy (overlay.metacopy) whose data is read from " + stack.label(lk.dataLayer)
                                    + " (" + Names.display(stack.path(lk.dataLayer) + "/" + lk.pathIn(lk.dataLayer)) + ")";
                        }
                    } else if (p.node().isLink()) {
                        verdict = Verdict.NOT_A_DIR;
                        verdictText = "not followed: " + disp(stepRel) + " is a symbolic link of " + stack.label(lk.top)
                                + " (-> " + Names.display(String.valueOf(p.node().linkTarget())) + ");"
                                + " explain does not follow links (the kernel would): explain the target instead";
                    } else {
                        verdict = Verdict.NOT_A_DIR;
                        verdictText = "gone: " + disp(stepRel) + " is a " + p.node().typeName() + " of "
                                + stack.label(lk.top) + ", not a directory, so " + disp(rel)
                                + " cannot exist (ENOTDIR)";
                    }
                    break;
                }
                case WHITEOUT: {
                    Probe p = lk.topProbe();
                    verdict = Verdict.WHITED_OUT;
                    verdictLayer = lk.top;
                    verdictText = "gone: " + disp(stepRel) + " is whited out in " + stack.label(lk.top) + " ("
                            + p.whiteout().label + ")" + (last ? "" : ", so " + disp(rel) + " does not exist");
                    if (last) verdictText += kernelListingNote(lk, p);
                    break;
                }
                case ABSENT:
                    verdict = Verdict.ABSENT;
                    verdictText = "gone: no layer the lookup asks (" + labels(lk.parentMerge) + ") holds "
                            + disp(stepRel) + (last ? "" : ", so " + disp(rel) + " does not exist");
                    break;
                case ERROR:
                    verdict = Verdict.ERROR;
                    verdictLayer = lk.stopLayer;
                    verdictText = "error: cannot look up " + disp(stepRel) + " in " + stack.label(lk.stopLayer) + ": "
                            + Posix.strerror(lk.probes.get(lk.probes.size() - 1).errno());
                    break;
                default:
                    throw new AssertionError(lk.result);
            }
            cur = lk;
            parentRel = stepRel;
        }

        String mergeEnd = null;
        DirSummary dir = null;
        if (verdict == null) {
            if (comps.isEmpty()) {
                for (int l = 0; l < n; l++) {
                    role[l] = l == 0 ? Role.SHOWN : Role.MERGED;
                    roleText[l] = l == 0 ? (n > 1 ? "shown: top of the merge (the root's attributes come from here)" : "shown")
                            : "merged: its entries are listed too";
                }
            }
            verdict = Verdict.DIR;
            verdictLayer = cur.top;
            mergeEnd = mergeEnd(cur, comps.isEmpty());
            verdictText = disp(rel) + " is a directory " + (cur.merge.length > 1
                    ? "merged from " + labels(cur.merge) + " (attributes from " + stack.label(cur.top) + ")"
                    : "of " + stack.label(cur.top) + " only");
            dir = summarize(cur, refs);
        }
        for (int l = 0; l < n; l++) {
            if (role[l] == null) { role[l] = Role.ABSENT; roleText[l] = ""; }
        }
        List<Say> says = new ArrayList<>();
        Lookup lastStep = steps.isEmpty() ? null : steps.get(steps.size() - 1).lookup();
        for (int l = 0; l < n; l++) {
            // a layer the lookup asked at another path (a renamed directory above): looked at there
            String askedAt = lastStep == null || lastStep.asked == null ? null : lastStep.asked[l];
            Raw raw = askedAt != null && !askedAt.equals(lastStep.rel)
                    ? raw(l, components(askedAt)).at(askedAt) : raw(l, comps);
            boolean holds = raw.ancestorRel() == null && raw.probe().kind() != Probe.Kind.ABSENT;
            if (role[l] == Role.HIDDEN && !holds) {
                // nothing there to hide: the layer is simply absent, and was not asked
                role[l] = Role.ABSENT;
                roleText[l] = notAsked[l];
            }
            says.add(new Say(refs.get(l), raw, role[l], roleText[l]));
        }
        if (verdict == Verdict.ABSENT) {
            // the path may still be in a layer the lookup never reached: say why that copy does not count
            for (Say s : says) {
                if (s.role() == Role.HIDDEN && s.raw().ancestorRel() == null && s.raw().probe().kind() != Probe.Kind.WHITEOUT
                        && s.layer().index() != verdictLayer) {
                    String why = s.roleText().substring(s.roleText().indexOf(": ") + 2);
                    verdictText += "; the " + s.raw().probe().node().typeName() + " in " + s.layer().label()
                            + " does not count: " + why;
                    break;
                }
            }
        }
        return new Explanation(rel, List.copyOf(refs), List.copyOf(steps), List.copyOf(says), verdict, verdictLayer,
                verdictText, mergeEnd, dir);
    }

    /** What layer l holds at the path, looked at alone (no other layer considered). */
    private Raw raw(int l, List<String> comps) {
        if (comps.isEmpty()) return new Raw(null, Probe.root(stack, l));
        String parent = "";
        for (int k = 0; k < comps.size(); k++) {
            String name = comps.get(k);
            Probe p = Probe.of(stack, l, parent, name);
            String rel = Layer.child(parent, name);
            if (k == comps.size() - 1) return new Raw(null, p);
            if (p.kind() != Probe.Kind.DIR) return new Raw(rel, p);
            parent = rel;
        }
        throw new AssertionError();
    }

    /**
     * Where kernel overlayfs would still list a whiteout in readdir (its lookup finds nothing either
     * way): in a directory it does not merge (one layer only, read as it is), where strata leaves it
     * out; and, for an xattr whiteout, unless it lies in a lower layer other than the last and its
     * directory there carries overlay.opaque=x (fs/overlayfs: xwhiteouts are not looked for in readdir
     * of the upper layer nor of the last lower layer), where strata's readdir lists it too.
     */
    private String kernelListingNote(Lookup lk, Probe p) {
        String dir = disp(lk.parentRel);
        if (lk.parentMerge.length == 1) {
            return "; note: kernel overlayfs still lists this name in " + dir + ", a directory it does not merge"
                    + " (reading it as it is), though the name cannot be opened; strata does not list it";
        }
        if (p.whiteout() == Markers.WhiteoutForm.XATTR) {
            Layer layer = stack.layer(p.layer());
            byte[] t = layer.getxattr(lk.parentRel, Markers.TRUSTED_OPAQUE);
            byte[] u = layer.getxattr(lk.parentRel, Markers.USER_OPAQUE);
            boolean x = (t != null && t.length > 0 && t[0] == 'x') || (u != null && u.length > 0 && u[0] == 'x');
            if (layer.isUpper() || p.layer() == stack.size() - 1 || !x) {
                return "; note: kernel overlayfs lists an xattr whiteout in readdir (though it cannot be opened)"
                        + " unless it lies in a lower layer above the last one and its directory there has"
                        + " overlay.opaque=x; so does strata";
            }
        }
        return "";
    }

    /** Why the layers below the stop of lk were not asked (a byte string). */
    private String cause(Lookup lk) {
        String at = disp(lk.rel);
        Probe p = lk.probes.get(lk.probes.size() - 1);
        String by = stack.label(lk.stopLayer);
        switch (lk.stop) {
            case NONDIR: return by + " above holds a " + p.node().typeName() + " at " + at;
            case WHITEOUT: return at + " is whited out in " + by + " (" + p.whiteout().label + ")";
            case OPAQUE: return at + " is an opaque directory in " + by + " (" + p.opaque().label + ")";
            case NONDIR_BELOW_DIR:
                return "the merge of " + at + " stops at " + by + ", where it is a " + p.node().typeName();
            case ERROR: return "the lookup of " + at + " failed in " + by;
            default: throw new AssertionError(lk.stop);
        }
    }

    /** Where the merge of a directory stops, in words. */
    private String mergeEnd(Lookup lk, boolean root) {
        String at = disp(lk.rel);
        if (root) {
            return "the root merges every layer (opaque markers on a layer root are ignored, as by the kernel)";
        }
        String by = lk.stopLayer >= 0 ? stack.label(lk.stopLayer) : null;
        switch (lk.stop) {
            case OPAQUE:
                return "the merge stops at " + by + ": the directory is opaque there ("
                        + lk.probes.get(lk.probes.size() - 1).opaque().label + ")"
                        + (lk.notAsked().length > 0 ? "; layers below are not merged" : "");
            case WHITEOUT:
                return "the merge stops at " + by + ": a whiteout (" + lk.probes.get(lk.probes.size() - 1).whiteout().label
                        + ") hides " + at + " there and below";
            case NONDIR_BELOW_DIR:
                return "the merge stops at " + by + ", where " + at + " is a "
                        + lk.probes.get(lk.probes.size() - 1).node().typeName()
                        + " (a non-directory below a directory ends the merge)";
            case NONE: {
                int lastAsked = lk.parentMerge[lk.parentMerge.length - 1];
                if (lastAsked == stack.size() - 1) return "the merge ends at the bottom of the stack (" + stack.label(lastAsked) + ")";
                return "the merge ends at " + stack.label(lastAsked) + ", the last layer the parent directory merges";
            }
            default:
                throw new AssertionError(lk.stop);
        }
    }

    private DirSummary summarize(Lookup dirLookup, List<LayerRef> refs) {
        Listing listing = Listing.read(stack, dirLookup);
        List<DirLayer> layers = new ArrayList<>();
        for (int l : dirLookup.merge) {
            Integer err = listing.errors.get(l);
            int entries = 0, shown = 0, merged = 0, hidden = 0, whiteouts = 0;
            if (err == null) {
                for (String name : listing.namesIn(l)) {
                    Probe p = listing.probe(stack, l, name);
                    Lookup lk = listing.lookups.get(name);
                    switch (p.kind()) {
                        case WHITEOUT: whiteouts++; break;
                        case DIR: case NONDIR:
                            entries++;
                            if (lk.uses(l)) { if (lk.top == l) shown++; else merged++; } else hidden++;
                            break;
                        default: break;
                    }
                }
            }
            layers.add(new DirLayer(refs.get(l), entries, shown, merged, hidden, whiteouts, listing.opqFiles.contains(l),
                    err == null ? 0 : err));
        }
        return new DirSummary(listing.visible().size(), List.copyOf(layers));
    }

    private String labels(int[] layers) {
        StringBuilder sb = new StringBuilder();
        for (int l : layers) sb.append(sb.length() > 0 ? ", " : "").append(stack.label(l));
        return sb.toString();
    }

    private static String disp(String rel) { return Names.displayPath(rel); }
}
