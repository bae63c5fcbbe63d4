package dev.strata.union;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.ManagementFactory;

/**
 * The heap's free ratios while a large tree is walked, and after.
 *
 * <p>bin/strata starts the JVM with tight ratios ({@code -XX:MinHeapFreeRatio=10
 * -XX:MaxHeapFreeRatio=30}): at rest the committed heap stays close to what is live. While a walk
 * grows the live set (the kernel transport's node table, the engine's cache up to its bound), that
 * costs a full collection each time the old generation has grown by 10%: about 20 over 300,000
 * entries (jstat / -Xlog:gc). So while a {@link NodeCache} evicts (a walk past its bound) the ratios
 * are the JVM's defaults (40 / 70: the old generation grows by at least 40% a step, about 9 full
 * collections instead of 20); when the last walk ends, one full collection with the maximum
 * free ratio of 2% gives back to the system what the walk left free (bin/strata has
 * {@code -XX:-ShrinkHeapInSteps}, so it shrinks at once), and the launch ratios come back.
 *
 * <p>Process-wide: a shared daemon's mounts walk at once or in turn; the first walk to begin widens,
 * the last to end settles. Where the flags cannot be set (another JVM, no jdk.management), nothing
 * changes but the collection at the end.
 */
public final class HeapSizing {
    private static final int WALK_MIN = 40, WALK_MAX = 70;
    /**
     * The maximum free ratio of the collection that ends a walk: the old generation keeps 2% free
     * (what the compaction leaves above the live objects was all touched by the walk, so every free
     * page kept is resident); the next growth takes the launch minimum again.
     */
    private static final int SETTLE_MAX = 2;
    private static int walks;
    private static HotSpotDiagnosticMXBean bean;
    private static boolean unavailable;
    /** The launch values (read at the first walk). */
    private static int launchMin = -1, launchMax = -1;

    private HeapSizing() {}

    /** A walk began: the old generation may grow in large steps. */
    static synchronized void walkBegins() {
        if (walks++ > 0 || !available()) return;
        if (launchMin >= WALK_MIN || launchMax >= WALK_MAX) return; // started with wide ratios: left as they are
        set("MaxHeapFreeRatio", WALK_MAX);
        set("MinHeapFreeRatio", WALK_MIN);
    }

    /**
     * A walk ended: when it was the last one, collects the heap once with a maximum free ratio of
     * {@link #SETTLE_MAX} (the heap shrinks to what is live), then restores the launch ratios.
     * Collects in any case (see {@link NodeCache}).
     */
    static synchronized void walkEnds() {
        if (walks > 0 && --walks > 0) return; // another walk goes on: it will settle
        collectTight();
    }

    /**
     * A collection at rest (the kernel transport's, after a mount ended or quiet mounts dropped their
     * cached nodes: fuse/kernel/Rest): as at the end of a walk, the heap shrinks to what is live and
     * {@link #SETTLE_MAX}; while a walk goes on, a plain collection (the walk settles when it ends).
     */
    public static synchronized void collectAtRest() {
        if (walks > 0) System.gc();
        else collectTight();
    }

    /** One collection with a maximum free ratio of {@link #SETTLE_MAX}, then the launch ratios again. */
    private static void collectTight() {
        boolean sized = available() && launchMin < WALK_MIN && launchMax < WALK_MAX;
        if (sized) {
            set("MinHeapFreeRatio", Math.min(launchMin, SETTLE_MAX));
            set("MaxHeapFreeRatio", Math.min(launchMin, SETTLE_MAX));
        }
        System.gc();
        if (sized) {
            set("MaxHeapFreeRatio", launchMax);
            set("MinHeapFreeRatio", launchMin);
        }
    }

    private static boolean available() {
        if (bean != null) return true;
        if (unavailable) return false;
        try {
            bean = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            launchMin = Integer.parseInt(bean.getVMOption("MinHeapFreeRatio").getValue());
            launchMax = Integer.parseInt(bean.getVMOption("MaxHeapFreeRatio").getValue());
            return true;
        } catch (RuntimeException | LinkageError e) {
            bean = null;
            unavailable = true;
            return false;
        }
    }

    private static void set(String flag, int value) {
        try {
            bean.setVMOption(flag, Integer.toString(value));
        } catch (RuntimeException e) {
            // a value the JVM refuses (e.g. Min above Max): the heap keeps the ratios it has
        }
    }
}
