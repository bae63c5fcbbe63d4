package dev.strata.options;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class OptionParserTest {
    final Path cwd = Path.of("/srv/overlay");

    @Test void fuseOverlayfsSyntax() {
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a:/b\\:c:rel/d,upperdir=/u,workdir=/w"), cwd);
        assertEquals(List.of(Path.of("/a"), Path.of("/b:c"), Path.of("/srv/overlay/rel/d")), o.lowerDirs);
        assertEquals(Path.of("/u"), o.upperDir);
        assertEquals(Path.of("/w"), o.workDir);
        assertFalse(o.readOnly());
        assertTrue(o.fsync);
    }

    @Test void podmanOptionStrings() {
        // what podman passes for a --rm container with user namespaces (note the empty option)
        MountOptions o = OptionParser.parse(List.of(
                "lowerdir=l/A:l/B,upperdir=diff,workdir=work,,volatile,"
                        + "uidmapping=:0:1000:1:1:100000:65536,gidmapping=:0:1000:1:1:100000:65536,"
                        + "context=\"system_u:object_r:container_file_t:s0:c1,c2\",xattr_permissions=2"), cwd);
        assertTrue(o.volatileMode);
        assertFalse(o.fsync, "volatile implies no fsync");
        // fuse-overlayfs's direction: on-disk id C+k shows as H+k (see IdMappingTest)
        assertEquals(1000, o.uidMapping.toContainer(0));
        assertEquals(100041, o.uidMapping.toContainer(42));
        assertEquals(42, o.uidMapping.toHost(100041));
        assertEquals(IdMapping.OVERFLOW, o.uidMapping.toContainer(70000));
        assertEquals(-1, o.uidMapping.toHost(5));
        assertEquals("\"system_u:object_r:container_file_t:s0:c1,c2\"", o.context);
        assertEquals(2, o.xattrPermissions);
        assertTrue(o.warnings.isEmpty(), o.warnings.toString());
    }

    @Test void squashAndMisc() {
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a", "squash_to_uid=7,squash_to_gid=8,static_nlink,noacl,fsync=0,timeout=5"), cwd);
        assertTrue(o.readOnly());
        assertEquals(7, o.squashUid);
        assertEquals(8, o.squashGid);
        assertTrue(o.staticNlink && o.noAcl && !o.fsync);
        assertEquals(5.0, o.timeoutSeconds);
        MountOptions r = OptionParser.parse(List.of("lowerdir=/a,squash_to_root"), cwd);
        assertEquals(0, r.squashUid);
    }

    @Test void writebackTakesOnOffAutoAndFuseOverlayfsNumbers() {
        assertEquals("off", OptionParser.parse(List.of("lowerdir=/a"), cwd).writeback);
        assertEquals("on", OptionParser.parse(List.of("lowerdir=/a,writeback=on"), cwd).writeback);
        assertEquals("on", OptionParser.parse(List.of("lowerdir=/a,writeback=1"), cwd).writeback);
        assertEquals("off", OptionParser.parse(List.of("lowerdir=/a,writeback=0"), cwd).writeback);
        assertEquals("auto", OptionParser.parse(List.of("lowerdir=/a,writeback=auto"), cwd).writeback);
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,writeback=1"), cwd).warnings.isEmpty());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OptionParser.parse(List.of("lowerdir=/a,writeback=yes"), cwd));
        assertEquals("writeback must be on, off or auto (or 1, 0)", e.getMessage());
    }

    @Test void unknownOptionsAreWarningsGenericOnesAreQuiet() {
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a,frobnicate=1,nodev,nosuid,relatime,rw,allow_other"), cwd);
        assertEquals(List.of("unknown option 'frobnicate=1' ignored"), o.warnings);
        assertTrue(o.fuseOptions.contains("allow_other"));
    }

    @Test void typosSuggestTheNearestOptionAndSayWhatWasLost() {
        MountOptions two = OptionParser.parse(List.of("lowerdir=/a,uppperdir=/u,wrkdir=/w"), cwd);
        assertEquals(List.of("unknown option 'uppperdir=/u' ignored (did you mean upperdir?)",
                "unknown option 'wrkdir=/w' ignored (did you mean workdir?)",
                "mounted read-only (no upperdir): 'uppperdir' is not an option (did you mean upperdir?); "
                        + "'wrkdir' is not an option (did you mean workdir?)"), two.warnings);
        assertTrue(two.readOnly());
        assertEquals("upperdir given without workdir ('wrkdir' is not an option (did you mean workdir?))",
                assertThrows(IllegalArgumentException.class,
                        () -> OptionParser.parse(List.of("lowerdir=/a,upperdir=/u,wrkdir=/w"), cwd)).getMessage());
        assertEquals(List.of("unknown option 'atr_timeout=0' ignored (did you mean attr_timeout?)"),
                OptionParser.parse(List.of("lowerdir=/a,atr_timeout=0"), cwd).warnings);
    }

    @Test void aRepeatedLowerdirWarns() {
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a", "lowerdir=/b"), cwd);
        assertEquals(List.of(Path.of("/b")), o.lowerDirs);
        assertEquals(List.of("lowerdir given more than once: the last one (/b) is used"), o.warnings);
    }

    @Test void mountFlagsAndNames() {
        MountOptions plain = OptionParser.parse(List.of("lowerdir=/a"), cwd);
        assertFalse(plain.nosuid() || plain.nodev() || plain.noexec());
        assertEquals("strata", plain.fsnameOrDefault());
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a,nosuid,nodev,noexec,fsname=my\\,src,subtype=img"), cwd);
        assertTrue(o.nosuid() && o.nodev() && o.noexec());
        assertEquals("my,src", o.fsname);
        assertEquals("img", o.subtype);
        MountOptions back = OptionParser.parse(List.of("nosuid,nodev", "lowerdir=/a,suid,dev"), cwd);
        assertFalse(back.nosuid() || back.nodev(), "suid/dev given later turn the defaults off");
    }

    @Test void accessTimeModes() {
        MountOptions plain = OptionParser.parse(List.of("lowerdir=/a"), cwd);
        assertEquals(MountOptions.Atime.RELATIME, plain.atime);
        assertFalse(plain.nodiratime);
        assertEquals(MountOptions.Atime.NOATIME, OptionParser.parse(List.of("lowerdir=/a,noatime"), cwd).atime);
        assertEquals(MountOptions.Atime.STRICTATIME, OptionParser.parse(List.of("lowerdir=/a,strictatime"), cwd).atime);
        MountOptions last = OptionParser.parse(List.of("noatime,nodiratime", "lowerdir=/a,relatime"), cwd);
        assertEquals(MountOptions.Atime.RELATIME, last.atime, "the last one given wins, as with mount(8)");
        assertTrue(last.nodiratime);
        assertEquals(MountOptions.Atime.RELATIME, OptionParser.parse(List.of("lowerdir=/a,noatime,atime"), cwd).atime);
        assertEquals(List.of(), OptionParser.parse(List.of("lowerdir=/a,strictatime,diratime"), cwd).warnings);
    }

    @Test void mistakesAreOneLineErrors() {
        assertEquals("no lowerdir given (-o lowerdir=DIR[:DIR...])",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("upperdir=/u"), cwd)).getMessage());
        assertEquals("upperdir given without workdir",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,upperdir=/u"), cwd)).getMessage());
        assertEquals("only single ':' or double '::' sequences of unescaped colons in lowerdir mount option allowed",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a:::/b"), cwd)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> OptionParser.parse(List.of("lowerdir=/a,uidmapping=0:1"), cwd)).getMessage().contains("triples"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> OptionParser.parse(List.of("lowerdir=/a,timeout=soon"), cwd)).getMessage().contains("not a number"));
    }

    @Test void validatorNamesEachProblem(@TempDir Path t) throws Exception {
        Path low = Files.createDirectory(t.resolve("low"));
        Path up = Files.createDirectory(t.resolve("up"));
        Path work = Files.createDirectory(t.resolve("work"));
        Path mnt = Files.createDirectory(t.resolve("mnt"));
        MountOptions ok = OptionParser.parse(List.of("lowerdir=" + low + ",upperdir=" + up + ",workdir=" + work), cwd);
        assertEquals(List.of(), Validator.check(ok, mnt));

        MountOptions missing = OptionParser.parse(List.of("lowerdir=" + t.resolve("nope")), cwd);
        assertEquals(List.of("lowerdir " + t.resolve("nope") + " does not exist"), Validator.check(missing, mnt));

        Files.writeString(work.resolve("stray"), "x");
        assertEquals(List.of("workdir " + work + " is not empty (it holds 'stray'); use an empty directory"), Validator.check(ok, mnt));
        Files.delete(work.resolve("stray"));
        Files.createDirectory(work.resolve("work")); // left by an earlier overlay mount: fine
        assertEquals(List.of(), Validator.check(ok, mnt));

        MountOptions nested = OptionParser.parse(List.of("lowerdir=" + low + ",upperdir=" + up + ",workdir=" + up.resolve("w")), cwd);
        Files.createDirectory(up.resolve("w"));
        assertTrue(Validator.check(nested, mnt).contains("workdir " + up.resolve("w") + " is inside upperdir " + up));

        // the kernel refuses one directory twice ("conflicting lowerdir path") and one inside another ("overlapping")
        MountOptions twice = OptionParser.parse(List.of("lowerdir=" + low + ":" + low + ",upperdir=" + up + ",workdir=" + work), cwd);
        assertEquals(List.of("lowerdir " + low + " is given twice (a layer can be in the stack once)"), Validator.check(twice, mnt));
        Files.createDirectories(low.resolve("sub"));
        MountOptions inner = OptionParser.parse(List.of("lowerdir=" + low + "::" + low.resolve("sub")), cwd);
        assertEquals(List.of("lowerdir " + low + " and lowerdir " + low.resolve("sub") + " overlap (one is inside the other)"),
                Validator.check(inner, mnt));
        Files.delete(low.resolve("sub"));

        Files.createDirectory(low.resolve("inside"));
        assertTrue(Validator.check(ok, low.resolve("inside")).contains("mountpoint " + low.resolve("inside") + " is inside lowerdir " + low));
    }

    /** redirect_dir as the kernel's: on writes redirects, follow (the default) and off follow them, nofollow refuses them. */
    @Test void redirectDirModes() {
        MountOptions d = OptionParser.parse(List.of("lowerdir=/a"), cwd);
        assertEquals("follow", d.redirectDir);
        assertFalse(d.redirectWrite());
        assertTrue(d.redirectFollow());
        MountOptions on = OptionParser.parse(List.of("lowerdir=/a,redirect_dir=on"), cwd);
        assertTrue(on.redirectWrite() && on.redirectFollow());
        assertTrue(on.warnings.isEmpty(), on.warnings.toString());
        assertEquals("follow", OptionParser.parse(List.of("lowerdir=/a,redirect_dir=off"), cwd).redirectDir);
        MountOptions nf = OptionParser.parse(List.of("lowerdir=/a,redirect_dir=nofollow"), cwd);
        assertFalse(nf.redirectWrite() || nf.redirectFollow());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OptionParser.parse(List.of("lowerdir=/a,redirect_dir=yes"), cwd));
        assertEquals("redirect_dir must be on, follow, nofollow or off", e.getMessage());
    }

    /**
     * userxattr as the kernel's ovl_fs_params_verify: redirect_dir becomes nofollow, nofollow given with it
     * is fine, any other mode is refused with the kernel's message (off is follow, as the kernel says here).
     */
    @Test void userxattrForcesRedirectNofollow() {
        MountOptions u = OptionParser.parse(List.of("lowerdir=/a,userxattr"), cwd);
        assertEquals("nofollow", u.redirectDir);
        assertFalse(u.redirectFollow() || u.redirectWrite());
        assertTrue(u.warnings.isEmpty(), u.warnings.toString());
        assertEquals("nofollow", OptionParser.parse(List.of("redirect_dir=nofollow,lowerdir=/a", "userxattr"), cwd).redirectDir);
        for (String[] c : new String[][]{{"on", "on"}, {"follow", "follow"}, {"off", "follow"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> OptionParser.parse(List.of("lowerdir=/a,redirect_dir=" + c[0] + ",userxattr"), cwd));
            assertEquals("conflicting options: userxattr,redirect_dir=" + c[1], e.getMessage());
        }
    }

    /** xino and uuid take the kernel's values; anything else is refused in one line. */
    @Test void xinoAndUuidValues() {
        assertEquals("off", OptionParser.parse(List.of("lowerdir=/a"), cwd).xino);
        for (String v : new String[]{"on", "off", "auto"}) {
            MountOptions o = OptionParser.parse(List.of("lowerdir=/a,xino=" + v), cwd);
            assertEquals(v, o.xino);
            assertTrue(o.warnings.isEmpty(), o.warnings.toString());
        }
        for (String v : new String[]{"on", "off", "null", "auto"}) {
            assertTrue(OptionParser.parse(List.of("lowerdir=/a,uuid=" + v), cwd).warnings.isEmpty());
        }
        assertEquals("xino must be on, off or auto",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,xino=yes"), cwd)).getMessage());
        assertEquals("uuid must be on, off, null or auto",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,uuid=1"), cwd)).getMessage());
    }

    /** fsync: fuse-overlayfs's 0/1 and the kernel's auto/strict/volatile; anything else in one line. */
    @Test void fsyncModes() {
        MountOptions d = OptionParser.parse(List.of("lowerdir=/a"), cwd);
        assertTrue(d.fsync && !d.fsyncStrict && !d.volatileMode);
        MountOptions s = OptionParser.parse(List.of("lowerdir=/a,fsync=strict"), cwd);
        assertTrue(s.fsync && s.fsyncStrict);
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,fsync=auto"), cwd).fsync);
        MountOptions v = OptionParser.parse(List.of("lowerdir=/a,fsync=volatile"), cwd);
        assertTrue(!v.fsync && !v.fsyncStrict && v.volatileMode);
        assertFalse(OptionParser.parse(List.of("lowerdir=/a,fsync=0"), cwd).fsync);
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,fsync=1"), cwd).fsync);
        assertEquals("fsync must be auto, strict or volatile (or fuse-overlayfs's 0 or 1)",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,fsync=yes"), cwd)).getMessage());
    }

    /** nfs_export takes on/off; on falls back to off with one warning (no NFS export over FUSE). */
    @Test void nfsExportFallsBackToOffWithAWarning() {
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,nfs_export=off"), cwd).warnings.isEmpty());
        List<String> w = OptionParser.parse(List.of("lowerdir=/a,nfs_export=on"), cwd).warnings;
        assertEquals(1, w.size(), w.toString());
        assertTrue(w.get(0).startsWith("nfs_export=on is not supported"), w.get(0));
        // as the kernel (6.18 here): refused with an upper, a fallback without one
        String up = "lowerdir=/a,upperdir=/u,workdir=/w,";
        assertEquals("conflicting options: nfs_export=on,index=off",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of(up + "index=off,nfs_export=on"), cwd)).getMessage());
        assertEquals("conflicting options: nfs_export=on,metacopy=on",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of(up + "nfs_export=on,metacopy=on"), cwd)).getMessage());
        assertEquals(1, OptionParser.parse(List.of("lowerdir=/a:/b,index=off,nfs_export=on"), cwd).warnings.size());
        assertEquals("nfs_export must be on or off",
                assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,nfs_export=1"), cwd)).getMessage());
    }

    /**
     * metacopy as the kernel's ovl_fs_params_verify: off by default; on turns redirect_dir=on on, and
     * conflicts with another redirect_dir given and with userxattr (in either order).
     */
    @Test void metacopyOptions() {
        assertFalse(OptionParser.parse(List.of("lowerdir=/a"), cwd).metacopy);
        assertFalse(OptionParser.parse(List.of("lowerdir=/a,metacopy=off"), cwd).metacopy);
        MountOptions on = OptionParser.parse(List.of("lowerdir=/a,metacopy=on"), cwd);
        assertTrue(on.metacopy && on.redirectWrite());
        assertTrue(on.warnings.isEmpty(), on.warnings.toString());
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,redirect_dir=on", "metacopy=on"), cwd).metacopy);
        assertFalse(OptionParser.parse(List.of("lowerdir=/a,metacopy=on,metacopy=off,redirect_dir=follow"), cwd).metacopy);
        assertTrue(OptionParser.parse(List.of("lowerdir=/a,userxattr"), cwd).warnings.isEmpty());
        for (String[] c : new String[][]{{"metacopy=on,redirect_dir=follow", "conflicting options: metacopy=on,redirect_dir=follow"},
                {"redirect_dir=off,metacopy=on", "conflicting options: metacopy=on,redirect_dir=follow"},
                {"redirect_dir=nofollow,metacopy=on", "conflicting options: metacopy=on,redirect_dir=nofollow"},
                {"metacopy=on,userxattr", "conflicting options: userxattr,metacopy=on"},
                {"userxattr,metacopy=on", "conflicting options: userxattr,metacopy=on"},
                {"metacopy=yes", "metacopy must be on or off"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> OptionParser.parse(List.of("lowerdir=/a," + c[0]), cwd), c[0]);
            assertEquals(c[1], e.getMessage(), c[0]);
        }
    }

    /**
     * Data-only lower layers as the kernel (6.18) parses them: "::" in lowerdir= starts them, and the
     * new mount API's lowerdir+= / datadir+= add one layer each; the kernel's refusals, word for word.
     */
    @Test void dataOnlyLayers() {
        MountOptions o = OptionParser.parse(List.of("lowerdir=/a:/b\\:::c::/d::rel/e,upperdir=/u,workdir=/w"), cwd);
        assertEquals(List.of(Path.of("/a"), Path.of("/b:")), o.lowerDirs);
        assertEquals(List.of(Path.of("/srv/overlay/c"), Path.of("/d"), Path.of("/srv/overlay/rel/e")), o.dataDirs);
        assertEquals(List.of(Path.of("/a"), Path.of("/b:"), Path.of("/srv/overlay/c"), Path.of("/d"), Path.of("/srv/overlay/rel/e")), o.allLowerDirs());
        MountOptions plus = OptionParser.parse(List.of("lowerdir+=/a,lowerdir+=b\\:x", "datadir+=/d,datadir+=/e"), cwd);
        assertEquals(List.of(Path.of("/a"), Path.of("/srv/overlay/b\\:x")), plus.lowerDirs); // taken as given, as the kernel
        assertEquals(List.of(Path.of("/d"), Path.of("/e")), plus.dataDirs);
        // lowerdir= replaces what lowerdir+= gave (the kernel's ovl_parse_param_lowerdir resets them)
        MountOptions again = OptionParser.parse(List.of("lowerdir+=/a,datadir+=/d,lowerdir=/b::/e"), cwd);
        assertEquals(List.of(Path.of("/b")), again.lowerDirs);
        assertEquals(List.of(Path.of("/e")), again.dataDirs);
        assertTrue(OptionParser.parse(List.of("lowerdir=/a"), cwd).dataDirs.isEmpty());
        for (String[] c : new String[][]{{"lowerdir=/a:::/d", "only single ':' or double '::' sequences of unescaped colons in lowerdir mount option allowed"},
                {"lowerdir=/a::", "unescaped trailing colons in lowerdir mount option"},
                {"lowerdir=/a:", "unescaped trailing colons in lowerdir mount option"},
                {"lowerdir=::/d", "cannot append lower layer"},
                {"lowerdir=:/a", "cannot append lower layer"},
                {"lowerdir=/a::/d:/b", "regular lower layers cannot follow data lower layers"},
                {"lowerdir=/a,lowerdir+=/b", "lowerdir+ and datadir+ cannot follow lowerdir"},
                {"lowerdir=/a,datadir+=/d", "lowerdir+ and datadir+ cannot follow lowerdir"},
                {"datadir+=/d,lowerdir+=/a", "regular lower layers cannot follow data layers"},
                {"datadir+=/d,upperdir=/u,workdir=/w", "at least one non-data lowerdir is required"},
                {"lowerdir+=", "option lowerdir+ needs a value (lowerdir+=...)"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of(c[0]), cwd), c[0]);
            assertEquals(c[1], e.getMessage(), c[0]);
        }
    }

    /**
     * verity=off|on|require: off by default; as on the kernel here (6.18) it needs neither metacopy=on nor
     * a redirect_dir mode, and goes with userxattr.
     */
    @Test void verityOptions() {
        MountOptions d = OptionParser.parse(List.of("lowerdir=/a::/d"), cwd);
        assertFalse(d.verityOn());
        for (String v : new String[]{"on", "require"}) {
            for (String with : new String[]{"", ",metacopy=off", ",redirect_dir=nofollow", ",userxattr", ",metacopy=on"}) {
                MountOptions o = OptionParser.parse(List.of("lowerdir=/a::/d,verity=" + v + with), cwd);
                assertTrue(o.verityOn(), v + with);
                assertEquals(v.equals("require"), o.verityRequire(), v + with);
                assertEquals(with.equals(",metacopy=on"), o.metacopy, v + with);
                assertTrue(o.warnings.isEmpty(), o.warnings.toString());
            }
        }
        assertFalse(OptionParser.parse(List.of("lowerdir=/a,verity=on,verity=off"), cwd).verityOn());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OptionParser.parse(List.of("lowerdir=/a,verity=yes"), cwd));
        assertEquals("verity must be off, on or require", e.getMessage());
    }
}
