# Build the Windows installer, dist\dhtviewer-<version>-windows-x64-setup.exe. Runs on Windows
# only (PyInstaller bundles the Python and Qt of the machine it runs on), from any folder:
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
# Needs Python 3.10+ (python.org installer, on PATH) and Inno Setup 6 (https://jrsoftware.org).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

if (-not (Test-Path build\venv-win)) { python -m venv build\venv-win }
$py = "build\venv-win\Scripts\python.exe"
& $py -m pip install --quiet --upgrade pip
& $py -m pip install --quiet . pyinstaller
if ($LASTEXITCODE) { throw "pip install failed" }

$version = (& $py -c "import dhtviewer; print(dhtviewer.__version__)").Trim()
& $py packaging\build.py --bundle-only
if ($LASTEXITCODE) { throw "PyInstaller build failed" }

# The bundle proves itself before it is packed: window, test network, lookup, announce.
& build\package\bundle\dhtviewer\dhtviewer.exe selftest --offscreen
if ($LASTEXITCODE) { throw "the bundle failed its selftest" }

$iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
& $iscc "/DAppVersion=$version" packaging\windows\dhtviewer.iss
if ($LASTEXITCODE) { throw "Inno Setup failed" }
Write-Host "dist\dhtviewer-$version-windows-x64-setup.exe"
