package dev.strata.inspect;

import java.util.List;

/**
 * The answer of {@code strata explain}: for one path of the merged view, what every layer holds there,
 * what the lookup made of it, and the verdict. Text fields are byte strings (see {@link Names}).
 */
public final class Explanation {

    /** What the merged view shows, or why it shows nothing. */
    public enum Verdict {
        /** A non-directory, from one layer. */
        FILE,
        /** A directory, merged from one or more layers. */
        DIR,
        /** A whiteout hides the path (or one of its parents). */
        WHITED_OUT,
        /** No layer the lookup asks holds the path (or one of its parents). */
        ABSENT,
        /** A parent of the path is not a directory in the merged view. */
        NOT_A_DIR,
        /** The path (or a parent) has a marker name ({@code .wh.*}), which is never shown. */
        MARKER,
        /** A layer could not be read. */
        ERROR
    }

    /** The part a layer plays for this path. */
    public enum Role {
        /** Its object is what the merged view shows (for a directory: the top of the merge). */
        SHOWN,
        /** Its directory is merged below the top one: its entries are listed too. */
        MERGED,
        /** Its regular file holds the data of a metadata-only copy above (overlay.metacopy). */
        DATA,
        /** Its whiteout hides the name in every layer below. */
        WHITEOUT,
        /** It has nothing at the path (or at a parent). */
        ABSENT,
        /** It has something, but a layer above hides it, or hides a parent. */
        HIDDEN,
        /** Its non-directory lies below a directory: ignored, and the merge stops there. */
        IGNORED,
        /** Its object at a parent of the path is shown but is not a directory. */
        NOT_A_DIR,
        /** The path has a marker name; nothing is looked up. */
        MARKER,
        /** It could not be read. */
        ERROR
    }

    /** A layer of the stack. */
    public record LayerRef(int index, String label, String path) {}

    /** One component of the lookup: the path looked up so far and its lookup (null for a marker name). */
    public record Step(String rel, Lookup lookup) {}

    /**
     * What a layer holds at the path, seen alone: {@code probe} is the path itself when
     * {@code ancestorRel} is null, else the first parent that is not a directory in this layer.
     */
    public record Raw(String ancestorRel, Probe probe, String redirectedRel) {
        Raw(String ancestorRel, Probe probe) { this(ancestorRel, probe, null); }
        /** The same, looked at where the lookup asked this layer: {@code rel} (a renamed directory's old path). */
        Raw at(String rel) { return new Raw(ancestorRel, probe, rel); }
    }

    /** A layer's say on the path: what it holds, its role, and that role in words. */
    public record Say(LayerRef layer, Raw raw, Role role, String roleText) {}

    /** For a directory verdict: one merged layer's contribution. */
    public record DirLayer(LayerRef layer, int entries, int shown, int merged, int hidden, int whiteouts,
                           boolean opaqueFile, int errno) {}

    /** For a directory verdict: the merged listing in numbers. */
    public record DirSummary(int visible, List<DirLayer> layers) {}

    public final String rel;
    public final List<LayerRef> layers;
    public final List<Step> steps;
    public final List<Say> says;
    public final Verdict verdict;
    /** The layer the verdict names (shown object, top directory, whiteout...), or -1. */
    public final int verdictLayer;
    public final String verdictText;
    /** Where the merge of a directory stops, in words; null unless the verdict is DIR. */
    public final String mergeEnd;
    public final DirSummary dir;

    Explanation(String rel, List<LayerRef> layers, List<Step> steps, List<Say> says, Verdict verdict, int verdictLayer,
                String verdictText, String mergeEnd, DirSummary dir) {
        this.rel = rel; this.layers = layers; this.steps = steps; this.says = says; this.verdict = verdict;
        this.verdictLayer = verdictLayer; this.verdictText = verdictText; this.mergeEnd = mergeEnd; this.dir = dir;
    }

    /** "/" + rel, for display (a byte string, unescaped). */
    public String path() { return "/" + rel; }
}
