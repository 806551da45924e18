; SARLANG Studio installer for Windows (Inno Setup 6). packaging/windows/installer.py runs
;   ISCC.exe /DAppVersion=0.1.0 /DVariant=field /DSourceDir=...\dist\field\sarlang-studio /DOutputDir=...\dist sarlang.iss
; Per-user by default (no administrator needed); "for all users" is offered in the dialog.
; An upgrade replaces {app} only: settings and the per-user models.json (%LOCALAPPDATA%\sarlang-studio)
; are never touched, and the uninstaller removes only what was installed.
; Not compiled on the Linux build machines (no ISCC there): build it on a Windows machine.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "full"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\" + Variant + "\sarlang-studio"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{6F1B2C4E-5A8D-4C7B-9E21-3D5A0B7C9F41}
AppName=SARLANG Studio
AppVersion={#AppVersion}
AppVerName=SARLANG Studio {#AppVersion} ({#Variant})
AppPublisher=SARLANG
DefaultDirName={autopf}\SARLANG Studio
DefaultGroupName=SARLANG Studio
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=sarlang-studio-{#AppVersion}-{#Variant}-windows-x86_64
SetupIconFile=..\..\resources\sarlang.ico
UninstallDisplayIcon={app}\sarlang.exe
Compression=lzma2/max
SolidCompression=yes
ChangesEnvironment=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Put sarlang and sarlang-cli on the PATH"; GroupDescription: "Command line:"

[InstallDelete]
; an upgrade starts from a clean program folder (old libraries must not linger)
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\SARLANG Studio"; Filename: "{app}\sarlang.exe"
Name: "{group}\Check the install (self-test)"; Filename: "{app}\sarlang-cli.exe"; Parameters: "--version"
Name: "{group}\{cm:UninstallProgram,SARLANG Studio}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\SARLANG Studio"; Filename: "{app}\sarlang.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\sarlang.exe"; Description: "{cm:LaunchProgram,SARLANG Studio}"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Path) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;
