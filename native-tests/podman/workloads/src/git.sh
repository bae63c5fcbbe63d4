# git: a repository of /usr/share/doc's copyright files (init, add, commit, a branch, a merge, gc, fsck).
set -e
mkdir -p /srv/repo
cd /srv/repo
git init -q -b main
git config user.email wl@example.invalid
git config user.name wl
cp -r /usr/share/doc .
git add -A
git commit -q -m first
git checkout -q -b side
find doc -name copyright | LC_ALL=C sort | head -50 | xargs sed -i 's/Copyright/(C)/'
git commit -q -am side
git checkout -q main
echo more >> doc/README 2>/dev/null || echo more > doc/README
git add -A && git commit -q -m main
git merge -q --no-edit side
git gc -q --aggressive
git fsck --full --strict 2>&1
git count-objects -v | grep -E '^(count|in-pack|packs)'
git log --oneline | wc -l
