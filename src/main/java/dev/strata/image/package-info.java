/**
 * Container images: import OCI image layouts (directory or tar), docker archives and single layer tars
 * into a content-addressed layer store, and hand a mount the layer directories of an image. The other
 * way: {@link dev.strata.image.Committer} writes an upper as a new layer and image
 * ({@link dev.strata.image.LayerWriter}: a layer directory as a deterministic layer tar),
 * {@link dev.strata.image.Exporter} writes an OCI layout or a docker archive, and
 * {@link dev.strata.image.ImageFiles} reads files of an image through the engine without a mount.
 *
 * <h2>API for the mount side</h2>
 * <pre>
 * ImageStore store = ImageStore.open(path);            // or ImageStore.open(ImageStore.defaultLocation())
 * List&lt;Path&gt; lowers = store.lowerDirsTopFirst("alpine:3.19");   // lowerdir order, top layer first
 * </pre>
 * {@code lowerDirsTopFirst} throws {@link dev.strata.image.ImageException} (one-line message) when the
 * image is unknown or one of its layers is missing; the CLI turns it into a user error. A reference is
 * {@code NAME[:TAG]} ({@code :latest} implied) or a prefix of the image id (4+ hex digits).
 *
 * <h2>Store layout</h2>
 * See {@link dev.strata.image.ImageStore}. Image records list layers <b>bottom first</b> (manifest and
 * {@code rootfs.diff_ids} order); {@code lowerDirsTopFirst} reverses that and keeps only the topmost
 * occurrence of a layer an image lists twice (the lower copy can never show through it).
 *
 * <h2>Decisions</h2>
 * <ul>
 * <li><b>Names are bytes.</b> Tar names are read as ISO-8859-1 (one char per byte) from the ustar fields,
 *     GNU long-name entries and the <em>raw</em> PAX records (commons-compress decodes PAX values as
 *     UTF-8 and strips a leading '/' in {@code setName}); the JVM runs with ISO-8859-1 so jnr-ffi passes
 *     them back byte for byte. Xattrs also come from the raw PAX records ({@code SCHILY.xattr.*}, and
 *     bsdtar's {@code LIBARCHIVE.xattr.*}), so binary values survive.</li>
 * <li><b>Absolute names are refused</b>, not re-rooted: no tool that writes image layers produces them,
 *     and the issue lists them as hostile. (docker and containerd would treat {@code /a} as {@code a}.)
 *     A leading {@code ./} and empty components are dropped, as every tar does.</li>
 * <li><b>{@code ..} components are refused</b> anywhere in a name or hard link target, even when the
 *     result would stay inside the layer.</li>
 * <li><b>Symlinks are never followed during extraction.</b> Every parent directory is opened with
 *     {@code O_PATH|O_DIRECTORY|O_NOFOLLOW}, one component at a time; an entry whose parent is a
 *     symlink is refused whatever the symlink points to (inside or outside the layer). Symlink targets
 *     are stored verbatim, absolute or not: they are resolved in the container, never here.</li>
 * <li><b>Hard links</b> must name an entry already extracted from the same layer, not a directory.</li>
 * <li><b>Sizes</b> are checked before any byte is written: the sum of file sizes against
 *     {@code --max-layer-size} and each file against the free space of the store; the uncompressed tar
 *     stream is capped by {@code --max-layer-size} too; ENOSPC while writing is a clear error.</li>
 * <li><b>Later entries replace earlier ones</b> (tar semantics): a directory over a directory merges,
 *     anything else removes what was there first (never writing through it).</li>
 * <li><b>Whiteouts:</b> {@code .wh.NAME} becomes a whiteout written by
 *     {@link dev.strata.layer.Markers#createWhiteout} (a 0/0 device; the kernel allows that even
 *     unprivileged on recent kernels, else a {@code .wh.NAME} file); {@code .wh..wh..opq} and an
 *     {@code overlay.opaque=y} xattr in the tar mark the directory opaque with
 *     {@link dev.strata.layer.Markers#markOpaque}. A whiteout of a name the same layer contains is
 *     ignored (OCI: it only hides lower layers). AUFS bookkeeping ({@code .wh..wh.plnk} ...) is skipped.
 *     Other overlay-private xattrs in a tar ({@code trusted.overlay.redirect}...) are dropped.</li>
 * <li><b>Metadata</b> order: data, chown (root only), xattrs, chmod, times. chown clears setuid bits and
 *     capabilities, so those come after it. Directories get theirs at the end, deepest first (created
 *     0700 meanwhile), so read-only directories can be filled and their mtimes stick. Implied parent
 *     directories are 0755. Without root, ownership is not kept and device nodes and xattrs the kernel
 *     refuses are skipped with a warning.</li>
 * <li><b>Atomicity:</b> a layer is extracted into {@code STORE/tmp/layer-*}; both digests are checked at the
 *     end of the single streaming pass; its info JSON is written, then the directory is renamed into
 *     {@code STORE/layers/sha256/HEX}. A failed import removes its temp directory and the layers it had
 *     added; a killed one leaves only {@code STORE/tmp} content, removed by the next import (imports
 *     and removals hold {@code STORE/lock}). No fsync: power loss is not covered.</li>
 * </ul>
 */
package dev.strata.image;
