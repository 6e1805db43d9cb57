#!/bin/sh
# Build dist/dhtviewer-<version>-macos-<arch>.dmg: the PyInstaller .app on a disk image with an
# Applications link to drag it to. Runs on macOS only (PyInstaller bundles the Python and Qt of
# the machine it runs on, and hdiutil is a macOS tool); an arm64 Mac makes an arm64 build.
# Needs Python 3.10+ from python.org or Homebrew.
#
#   sh packaging/macos/build-dmg.sh
#
# The app is not signed or notarised: Gatekeeper asks for a right-click > Open the first time.
# To sign, set CODESIGN_IDENTITY="Developer ID Application: ..." (notarisation: xcrun notarytool).
set -eu
cd "$(dirname "$0")/../.."

[ -d build/venv-mac ] || python3 -m venv build/venv-mac
py=build/venv-mac/bin/python
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet . pyinstaller

version=$("$py" -c 'import dhtviewer; print(dhtviewer.__version__)')
"$py" packaging/build.py --bundle-only
app=build/package/bundle/dhtviewer.app

# The bundle proves itself before it is packed: window, test network, lookup, announce.
"$app/Contents/MacOS/dhtviewer" selftest --offscreen

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --sign "$CODESIGN_IDENTITY" "$app"
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp -R "$app" "$staging/DHT Viewer.app"
ln -s /Applications "$staging/Applications"
mkdir -p dist
dmg="dist/dhtviewer-$version-macos-$(uname -m).dmg"
hdiutil create -volname "DHT Viewer $version" -srcfolder "$staging" -ov -format UDZO "$dmg"
echo "$dmg"
