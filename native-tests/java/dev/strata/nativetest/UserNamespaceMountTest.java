package dev.strata.nativetest;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A kernel-transport mount made by uid 0 of a user namespace, as rootless podman runs its mount program
 * (issue 14): the kernel registers passthrough backing files only for CAP_SYS_ADMIN in the initial user
 * namespace, so such a mount must not ask for passthrough (it used to clone its layers' mounts, negotiate
 * passthrough and have its first open refused, with a warning in its log); its data is served by strata
 * and reads right. Drives bin/strata in `unshare --user --map-root-user --mount`; unmounts in the
 * namespace, and the namespace's end takes the mount with it whatever happens.
 */
@Tag("native")
class UserNamespaceMountTest {
    Path dir, strata;

    @BeforeEach void setUp() throws IOException {
        NativeSupport.assumeNativeEnvironment();
        org.junit.jupiter.api.Assumptions.assumeTrue(Mounter.Strata.unavailableReason(NativeSupport.projectHome()) == null,
                "strata is not built");
        strata = NativeSupport.projectHome().resolve("bin/strata");
        dir = NativeSupport.newTempDir("userns");
    }

    @AfterEach void cleanUp() {
        if (dir != null) NativeSupport.deleteTree(dir);
    }

    @Test void aMountInAUserNamespaceServesDataWithoutAskingForPassthrough() throws IOException {
        Path l = Files.createDirectories(dir.resolve("L")), u = Files.createDirectories(dir.resolve("U"));
        Path w = Files.createDirectories(dir.resolve("W")), m = Files.createDirectories(dir.resolve("M"));
        Files.writeString(l.resolve("f"), "lower data\n");
        Path log = dir.resolve("mount.log");
        String script = "set -e; " + strata + " mount --log " + log + " -o lowerdir=" + l + ",upperdir=" + u + ",workdir=" + w
                + " " + m + "; trap '" + strata + " umount " + m + "' EXIT; grep -c . /proc/self/uid_map; cat " + m + "/f; echo more >> "
                + m + "/f; cat " + m + "/f";
        NativeSupport.Proc.Result r = NativeSupport.Proc.run(dir, 120, "unshare", "--user", "--map-root-user", "--mount",
                "--propagation", "private", "bash", "-c", script);
        assertEquals(0, r.exit, r.toString());
        assertEquals("1\nlower data\nlower data\nmore\n", r.stdout, "a one-line uid map (not the initial namespace), then the data: " + r);
        assertEquals("lower data\nmore\n", Files.readString(u.resolve("f")), "the write went to the upper");
        String logged = Files.exists(log) ? Files.readString(log) : "";
        assertFalse(logged.contains("passthrough"), "no passthrough asked for, none refused: " + logged);
    }
}
