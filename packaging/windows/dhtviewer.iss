; Inno Setup 6 script: the Windows installer of dhtviewer, made from the PyInstaller bundle.
;
; Built on Windows, never on the Linux machines that build the .deb; build.ps1 beside this file
; does every step (bundle, selftest, installer). By hand, from the repository root:
;   py packaging\build.py --bundle-only
;   iscc /DAppVersion=<version> packaging\windows\dhtviewer.iss
; The version is dhtviewer.__version__; this script has no version of its own.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=x.y.z (packaging\windows\build.ps1 does it)
#endif
#define AppName "DHT Viewer"
#define AppUserModelId "io.github.dhtviewer.DhtViewer"
#define Bundle "..\..\build\package\bundle\dhtviewer"

[Setup]
; A fixed AppId keeps upgrades and the uninstaller in one entry across versions.
AppId=io.github.dhtviewer.DhtViewer
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=dhtviewer developers
DefaultDirName={autopf}\dhtviewer
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install without administrator rights is offered too.
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=dhtviewer-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\resources\icons\dhtviewer.ico
UninstallDisplayIcon={app}\dhtviewer-gui.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; dhtviewer-gui.exe (no console) for the Start menu, dhtviewer.exe for the command line
; (dhtviewer.exe selftest, lookup, announce...), both over the same _internal folder.
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; an upgrade must not keep libraries the new version no longer ships
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\dhtviewer-gui.exe"; AppUserModelID: "{#AppUserModelId}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\dhtviewer-gui.exe"; AppUserModelID: "{#AppUserModelId}"; Tasks: desktopicon

[Run]
Filename: "{app}\dhtviewer-gui.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
