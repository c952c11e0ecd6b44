"""The files that make a computer start as a kiosk, as text: the kiosk's systemd unit for each way
of drawing on the screen, the pause after repeated crashes, the kiosk user, and the small system
settings (watchdog, headset, reboot permission). Generated here rather than shipped as package data,
so the one wheel carries them; systemd/lektiecafe-kiosk.service in the repository is the default
(cage) rendering, kept equal by tests/test_provision_install.py.

Displays (`--display`):
- `cage` (default): the Wayland kiosk compositor cage on tty1 runs the kiosk as its only window. It
  takes the screen and input from logind (a PAM session on tty1), so the kiosk needs no DRM master
  and a crash never leaves the console on screen.
- `kmsdrm`: SDL's KMSDRM driver draws directly, without a compositor (fewer parts; needs a board
  whose DRM driver SDL handles well, and the kiosk user in the video/render/input groups).
- `x11`: Xorg through xinit, only where neither works (old graphics without KMS)."""

from __future__ import annotations

KIOSK_UNIT = "/etc/systemd/system/lektiecafe-kiosk.service"
RETRY_TIMER = "/etc/systemd/system/lektiecafe-kiosk-retry.timer"
WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/lektiecafe-kiosk.service"
PAM_FILE = "/etc/pam.d/lektiecafe-kiosk"
XINITRC = "/etc/lektiecafe/xinitrc"
SYSUSERS = "/etc/sysusers.d/lektiecafe-kiosk.conf"
WATCHDOG_DROPIN = "/etc/systemd/system.conf.d/lektiecafe-watchdog.conf"
HEADSET = "/etc/modprobe.d/lektiecafe-headset.conf"
POLKIT_RULE = "/etc/polkit-1/rules.d/50-lektiecafe-kiosk.rules"

USER = "lektiecafe-kiosk"
APP = "/opt/lektiecafe"
DATA_DIR = "/var/lib/lektiecafe-kiosk"
RUNTIME_DIR = "/run/lektiecafe-kiosk"
LEKTIECAFE = f"{APP}/current/bin/lektiecafe"
DISPLAYS = ("cage", "kmsdrm", "x11")

# The unit's options become `lektiecafe kiosk` options: ${X} is one word (a name may have spaces),
# $KIOSK_ARGS is split into words (extra options an administrator adds to kiosk.env).
KIOSK_OPTIONS = (
    f"--data-dir {DATA_DIR} \\\n    --hub ${{LEKTIECAFE_HUB}} --name ${{LEKTIECAFE_NAME}} "
    "--lang ${LEKTIECAFE_LANG} $KIOSK_ARGS"
)

HEAD = """\
# The kiosk: `lektiecafe kiosk` full screen on the device's own screen, with the webcam, the
# headset and the touch screen: {how}.
# Written by `lektiecafe provision install --display {display}`: run that again instead of
# editing this file (docs/kiosk.md "Set up a kiosk").
# Started again when it exits (a restart asked for from the hub exits with 75), when it crashes
# and when its screen freezes (watchdog: the UI loop pings every 15 s). After 5 failures within
# 5 minutes it waits 10 minutes (lektiecafe-kiosk-retry.timer) and tries again, without end.
[Unit]
Description=Lektiecafé kiosk
After=network-online.target sound.target systemd-user-sessions.service systemd-logind.service
Wants=network-online.target
# The kiosk owns the first console: no login prompt underneath it.
Conflicts=getty@tty1.service
After=getty@tty1.service
StartLimitIntervalSec=300
StartLimitBurst=5
OnFailure=lektiecafe-kiosk-retry.timer

[Service]
Type=notify
WatchdogSec=30
User={user}
Group={user}
SupplementaryGroups=video render input audio
"""

# cage and xinit start the kiosk as a child: it may notify (NotifyAccess=all), and without
# WATCHDOG_PID (the parent's pid, which lektiecafe.sdnotify would not answer for) it pings itself.
CAGE = f"""\
# The kiosk is cage's child: it may notify, and `env -u WATCHDOG_PID` (cage's pid) lets it ping.
NotifyAccess=all
# A logind session on tty1 gives cage the screen and the input devices.
PAMName={USER}
TTYPath=/dev/tty1
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
TTYReset=yes
TTYVHangup=yes
TTYVTDisallocate=yes
UtmpIdentifier=tty1
UtmpMode=user
Environment=SDL_VIDEODRIVER=wayland
Environment=SDL_AUDIODRIVER=alsa
EnvironmentFile=-/etc/lektiecafe/kiosk.env
# XDG_RUNTIME_DIR: logind's /run/user/… is hidden by ProtectHome, so cage's socket goes to the
# unit's own runtime directory. No -s: the student cannot switch to another console.
ExecStart=/usr/bin/env -u WATCHDOG_PID XDG_RUNTIME_DIR={RUNTIME_DIR} /usr/bin/cage -d -- \\
    {LEKTIECAFE} kiosk {KIOSK_OPTIONS}
"""

KMSDRM = f"""\
NotifyAccess=main
TTYPath=/dev/tty1
StandardInput=tty-force
StandardOutput=journal
StandardError=journal
TTYReset=yes
TTYVHangup=yes
Environment=SDL_VIDEODRIVER=kmsdrm
Environment=SDL_AUDIODRIVER=alsa
EnvironmentFile=-/etc/lektiecafe/kiosk.env
ExecStart={LEKTIECAFE} kiosk {KIOSK_OPTIONS}
"""

X11 = f"""\
# The kiosk is a child of xinit: it may notify, and `env -u WATCHDOG_PID` lets it ping.
NotifyAccess=all
PAMName={USER}
TTYPath=/dev/tty1
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
TTYReset=yes
TTYVHangup=yes
UtmpIdentifier=tty1
UtmpMode=user
Environment=SDL_VIDEODRIVER=x11
Environment=SDL_AUDIODRIVER=alsa
EnvironmentFile=-/etc/lektiecafe/kiosk.env
# Xorg itself, not Debian's setuid wrapper (NoNewPrivileges): rootless through the logind session.
ExecStart=/usr/bin/env -u WATCHDOG_PID /usr/bin/xinit {XINITRC} -- /usr/lib/xorg/Xorg :0 vt1 \\
    -keeptty -nolisten tcp -nocursor -s 0 -dpms
"""

TAIL = f"""\
Restart=always
RestartSec=5
TimeoutStopSec=20
StateDirectory={USER}
StateDirectoryMode=0700
RuntimeDirectory={USER}
RuntimeDirectoryMode=0700
UMask=0077
# Only the devices a kiosk uses: display, camera, sound, touch and keys, and its console.
DevicePolicy=closed
DeviceAllow=char-drm rw
DeviceAllow=char-video4linux rw
DeviceAllow=char-alsa rw
DeviceAllow=char-input r
DeviceAllow=/dev/tty1 rw
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
CapabilityBoundingSet=
SystemCallArchitectures=native
# A call outside the usual service set fails (EPERM) instead of killing the kiosk mid-visit.
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
# AF_NETLINK: WebRTC (aioice) lists the network interfaces, and udev reports new input devices.
# No MemoryDenyWriteExecute: libffi's callbacks (through ctypes) and Mesa may need writable code.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK

[Install]
WantedBy=multi-user.target
"""

HOW = {
    "cage": "inside the Wayland kiosk compositor cage on tty1",
    "kmsdrm": "drawn by SDL's KMSDRM driver on tty1, no compositor",
    "x11": "in Xorg on tty1, started by xinit",
}


def kiosk_unit(display: str) -> str:
    body = {"cage": CAGE, "kmsdrm": KMSDRM, "x11": X11}[display]
    return HEAD.format(how=HOW[display], display=display, user=USER) + body + TAIL


RETRY = """\
# Started when lektiecafe-kiosk.service failed 5 times within 5 minutes: start it again after a
# pause, then be ready for the next time (RemainAfterElapse=no). Written by provision install.
[Unit]
Description=Start the Lektiecafé kiosk again after a pause

[Timer]
OnActiveSec=10min
Unit=lektiecafe-kiosk.service
RemainAfterElapse=no
"""

# systemd opens a session for PAMName= without authenticating: account and session only.
PAM = """\
# The kiosk's session on tty1 (lektiecafe-kiosk.service PAMName=), written by provision install.
account  required pam_unix.so
session  required pam_unix.so
session  required pam_systemd.so
"""

XINIT = f"""\
#!/bin/sh
# The X session of lektiecafe-kiosk.service (--display x11), written by provision install.
xset s off s noblank -dpms
exec {LEKTIECAFE} kiosk --data-dir {DATA_DIR} --hub "$LEKTIECAFE_HUB" \\
    --name "$LEKTIECAFE_NAME" --lang "$LEKTIECAFE_LANG" $KIOSK_ARGS
"""

SYSUSERS_CONF = f"""\
# The kiosk's own user, written by `lektiecafe provision install` (applied by systemd-sysusers).
u {USER} - "Lektiecafé kiosk" {DATA_DIR} /usr/sbin/nologin
m {USER} video
m {USER} render
m {USER} input
m {USER} audio
"""

WATCHDOG = """\
# The board's hardware watchdog restarts the device if systemd itself stops answering
# (written by provision install). 15 s: the longest a Raspberry Pi's watchdog allows.
[Manager]
RuntimeWatchdogSec=15
RebootWatchdogSec=2min
"""

# ALSA's default device is card 0: reserve it for a USB sound card, whichever headset it is; the
# board's own outputs (HDMI, jack) get the next numbers.
HEADSET_CONF = """\
# The USB headset is sound card 0, ALSA's default, for the kiosk's sound and microphone
# (written by provision install). The board's own outputs come after it.
options snd slots=snd-usb-audio
"""

POLKIT = f"""\
// Site staff can reboot the kiosk from the hub's Kiosks page: the kiosk's user may reboot
// (written by provision install).
polkit.addRule(function (action, subject) {{
  if (action.id.indexOf("org.freedesktop.login1.reboot") === 0 && subject.user === "{USER}")
    return polkit.Result.YES;
}});
"""
