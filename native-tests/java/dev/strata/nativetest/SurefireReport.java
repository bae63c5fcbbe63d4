package dev.strata.nativetest;

import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What scripts/test.sh prints at the end: how many native tests (classes tagged "native") ran and which
 * were skipped, read from surefire's XML reports. In CI mode it also decides: a native class of which no
 * test ran (every test skipped, or the class skipped as a whole) is a failure, and with --expect-all so is
 * a native class with no report at all, or no native test run at all.
 *
 * <pre>java -cp target/test-classes dev.strata.nativetest.SurefireReport [--ci] [--expect-all]
 *      --sources native-tests/java:src/test/java target/surefire-reports ...</pre>
 * Exit 0, or 1 when CI mode finds a problem (each printed on one line), 2 on a usage error.
 */
public final class SurefireReport {
    /** One test class as surefire reported it (summed over every report dir it appears in). */
    static final class ClassResult {
        int tests, skipped, failed;
        final List<String> skips = new ArrayList<>();
        int ran() { return tests - skipped; }
    }

    final Map<String, ClassResult> classes = new TreeMap<>();

    /** Reads every TEST-*.xml of dir (none if the dir does not exist). */
    void read(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) return;
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().matches("TEST-.*\\.xml")).sorted().toList();
        }
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        for (Path x : files) {
            Document d = f.newDocumentBuilder().parse(x.toFile());
            Element suite = d.getDocumentElement();
            ClassResult r = classes.computeIfAbsent(suite.getAttribute("name"), k -> new ClassResult());
            NodeList cases = suite.getElementsByTagName("testcase");
            for (int i = 0; i < cases.getLength(); i++) {
                Element c = (Element) cases.item(i);
                r.tests++;
                NodeList sk = c.getElementsByTagName("skipped");
                if (sk.getLength() > 0) {
                    r.skipped++;
                    String msg = ((Element) sk.item(0)).getAttribute("message");
                    r.skips.add(c.getAttribute("name") + (msg.isEmpty() ? "" : ": " + msg.strip().replace('\n', ' ')));
                }
                if (c.getElementsByTagName("failure").getLength() + c.getElementsByTagName("error").getLength() > 0) r.failed++;
            }
        }
    }

    /** The annotation on a line of its own (as every native class has it), not a mention in a comment. */
    private static final Pattern NATIVE_TAG = Pattern.compile("(?m)^\\s*@Tag\\(\"native\"\\)\\s*$");
    private static final Pattern PACKAGE = Pattern.compile("(?m)^package\\s+([\\w.]+)\\s*;");

    /** The classes tagged @Tag("native") in the given source roots. */
    static TreeSet<String> nativeClasses(List<Path> sourceRoots) throws IOException {
        TreeSet<String> out = new TreeSet<>();
        for (Path root : sourceRoots) {
            if (!Files.isDirectory(root)) continue;
            List<Path> files;
            try (Stream<Path> s = Files.walk(root)) {
                files = s.filter(p -> p.toString().endsWith(".java")).toList();
            }
            for (Path p : files) {
                String src = Files.readString(p, StandardCharsets.ISO_8859_1);
                if (!NATIVE_TAG.matcher(src).find()) continue;
                Matcher m = PACKAGE.matcher(src);
                String simple = p.getFileName().toString().replaceFirst("\\.java$", "");
                out.add(m.find() ? m.group(1) + "." + simple : simple);
            }
        }
        return out;
    }

    /** The summary lines (always printed). */
    List<String> summary(TreeSet<String> natives) {
        List<String> lines = new ArrayList<>();
        int ran = 0, skipped = 0, classesRun = 0;
        for (String n : natives) {
            ClassResult r = classes.get(n);
            if (r == null) continue;
            classesRun++;
            ran += r.ran();
            skipped += r.skipped;
            for (String s : r.skips) lines.add("  skipped: " + simple(n) + "." + s);
        }
        lines.add(0, "test: native tests run: " + ran + " (skipped: " + skipped + ") in " + classesRun + " of " + natives.size() + " native classes");
        return lines;
    }

    /** What CI mode does not accept, one line each (empty if nothing). */
    List<String> ciProblems(TreeSet<String> natives, boolean expectAll) {
        List<String> out = new ArrayList<>();
        int ran = 0;
        for (String n : natives) {
            ClassResult r = classes.get(n);
            if (r == null) {
                if (expectAll) out.add("test: FAILED: native class " + n + " did not run at all");
                continue;
            }
            ran += r.ran();
            if (r.ran() == 0) out.add("test: FAILED: every test of native class " + n + " was skipped" + (r.skips.isEmpty() ? "" : " (" + r.skips.get(0) + ")"));
        }
        if (expectAll && ran == 0) out.add("test: FAILED: no native test ran");
        return out;
    }

    private static String simple(String fqcn) { return fqcn.substring(fqcn.lastIndexOf('.') + 1); }

    public static void main(String[] args) throws Exception {
        System.exit(run(args));
    }

    static int run(String[] args) throws Exception {
        boolean ci = false, expectAll = false;
        List<Path> sources = new ArrayList<>(), reports = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--ci": ci = true; break;
                case "--expect-all": expectAll = true; break;
                case "--sources":
                    if (i + 1 == args.length) { System.err.println("SurefireReport: --sources needs a value"); return 2; }
                    for (String s : args[++i].split(":")) if (!s.isEmpty()) sources.add(Paths.get(s));
                    break;
                default: reports.add(Paths.get(args[i]));
            }
        }
        if (sources.isEmpty()) { System.err.println("SurefireReport: --sources DIR[:DIR] is required"); return 2; }
        SurefireReport r = new SurefireReport();
        for (Path d : reports) r.read(d);
        TreeSet<String> natives = nativeClasses(sources);
        r.summary(natives).forEach(System.out::println);
        if (!ci) return 0;
        List<String> problems = r.ciProblems(natives, expectAll);
        problems.forEach(System.out::println);
        return problems.isEmpty() ? 0 : 1;
    }
}
