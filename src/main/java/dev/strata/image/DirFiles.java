package dev.strata.image;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Files of a source directory. Symlinks inside it are followed only while they stay inside it. */
final class DirFiles implements SourceFiles {
    private final Path root;
    private final String label;

    DirFiles(Path dir, String label) throws IOException {
        this.root = dir.toRealPath();
        this.label = label;
    }

    private Path resolve(String rel) throws IOException {
        Path p = root.resolve(SourceFiles.clean(rel, label));
        Path real;
        try {
            real = p.toRealPath();
        } catch (NoSuchFileException e) {
            return null;
        }
        if (!real.startsWith(root)) {
            throw new ImageException(label + ": '" + Digest.clip(rel) + "' points outside the source directory");
        }
        return Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS) ? real : null;
    }

    @Override public boolean exists(String rel) {
        try {
            return resolve(rel) != null;
        } catch (IOException e) {
            return false;
        }
    }

    @Override public long size(String rel) throws IOException {
        Path p = resolve(rel);
        if (p == null) throw missing(rel);
        return Files.size(p);
    }

    @Override public InputStream open(String rel) throws IOException {
        Path p = resolve(rel);
        if (p == null) throw missing(rel);
        return Files.newInputStream(p);
    }

    private ImageException missing(String rel) {
        return new ImageException(label + ": " + Digest.clip(rel) + " is missing");
    }

    @Override public String describe(String rel) { return label + "/" + rel; }
}
