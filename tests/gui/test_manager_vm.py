#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_manager_vm.py MANAGER VIVARIUM ARTEFACTS - a VM's whole life in
vivarium-manager, driven through its accessibility tree (AT-SPI) as a user
would: the New VM dialog refuses bad input (an existing name, memory 12Q, an
unreadable ISO) with the CLI's one-line error and leaves the library as it
was; creates a VM from a GRUB ISO ($GRUB_ISO); starts it and waits for the
GRUB menu in its thumbnail, compared with `vivarium screenshot`; pauses and
resumes it; takes a snapshot and reverts to it; sees Delete refused while it
runs and Settings locked with the reason; powers it off and deletes it.
Meanwhile a VM started from the CLI shows up running (the delay is
printed), and a VNC port in use makes the window's Start say why in the info
bar, and a full clone of a VM is made through the Snapshots dialog.  Settings
switches a VM's TPM on and its USB controller off, and locks a saved VM's memory,
vCPUs and devices, saying why, while its other settings can change.
Screenshots of each step go to ARTEFACTS (vm-*.png).

Run by test_manager.sh (Xvfb, private D-Bus and library; $TINY_KERNEL,
$GRUB_ISO).  Exit 0 pass, 1 fail."""
import os
import socket
import subprocess
import sys
import tempfile
import time

import pyatspi

import guitest
from guitest import bad, button, cell_text, find, find_app, ok, press, shot, v, wait

manager, viv, art = sys.argv[1:4]
guitest.setup(viv, art, shot_prefix="vm-")
kernel = os.environ["TINY_KERNEL"]
grub_iso = os.environ.get("GRUB_ISO", "")
have_kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
vms = os.path.join(os.environ["XDG_DATA_HOME"], "vivarium", "vms")
tmp = tempfile.mkdtemp(prefix="vivarium-guivm.")
CONVERT = "/usr/bin/convert"     # ImageMagick's, whatever else is in $PATH


def window(app, title):
    """A top-level window (dialog, alert) of the app whose name starts so."""
    for i in range(app.childCount):
        w = app.getChildAtIndex(i)
        try:
            if w is not None and w.name.startswith(title) and \
                    w.getState().contains(pyatspi.STATE_SHOWING):
                return w
        except Exception:
            pass
    return None


def top_with_label(app, text):
    """The app's shown top-level window holding a label with @text."""
    for i in range(app.childCount):
        w = app.getChildAtIndex(i)
        try:
            if w is not None and w.getState().contains(pyatspi.STATE_SHOWING) and \
                    label_with(w, text) is not None:
                return w
        except Exception:
            pass
    return None


def main_window(app):
    return window(app, "Vivarium")


def table(node, name):
    return find(node, lambda n: n.name == name and
                n.getRole() in (pyatspi.ROLE_TREE_TABLE, pyatspi.ROLE_TABLE))


def rows(app, name="Virtual machines"):
    t = table(main_window(app) if name == "Virtual machines" else app, name)
    if t is None:
        return {}
    ti = t.queryTable()
    out = {}
    for r in range(ti.nRows):
        texts = [cell_text(ti.getAccessibleAt(r, c)) for c in range(ti.nColumns)]
        if texts and texts[0]:
            out[texts[0]] = [r] + texts[1:]
    return out


def state_of(app, name):
    r = rows(app).get(name)
    return r[1] if r else None


def set_text(node, a11y_name, text):
    e = find(node, lambda n: n.name == a11y_name and n.getRole() in
             (pyatspi.ROLE_TEXT, pyatspi.ROLE_ENTRY, pyatspi.ROLE_SPIN_BUTTON))
    if e is None:
        bad("no entry '%s'" % a11y_name)
        return
    e.queryEditableText().setTextContents(text)


def label_with(node, text):
    """A label with @text that is on screen (not merely in the tree)."""
    return find(node, lambda n: n.getRole() == pyatspi.ROLE_LABEL and text in n.name and
                n.getState().contains(pyatspi.STATE_SHOWING))


def select(app, name, tname="Virtual machines", node=None):
    t = table(node if node is not None else main_window(app), tname)
    r = (rows(app) if node is None else rows(node, tname)).get(name)
    if t is None or r is None:
        bad("cannot select %s in %s" % (name, tname))
        return
    t.querySelection().clearSelection()
    t.queryTable().addRowSelection(r[0])
    time.sleep(0.2)


def tick(node, a11y_name):
    """Click check box @a11y_name; False (and bad()) if missing or insensitive."""
    b = find(node, lambda n: n.name == a11y_name and n.getRole() == pyatspi.ROLE_CHECK_BOX)
    if b is None or not b.getState().contains(pyatspi.STATE_SENSITIVE):
        bad("check box '%s': %s" % (a11y_name, "missing" if b is None else "insensitive"))
        return False
    return guitest.click(b)


def sensitive(node, a11y_name):
    n = find(node, lambda n: n.name == a11y_name and n.getRole() in
             (pyatspi.ROLE_TEXT, pyatspi.ROLE_SPIN_BUTTON, pyatspi.ROLE_CHECK_BOX, pyatspi.ROLE_COMBO_BOX))
    return None if n is None else n.getState().contains(pyatspi.STATE_SENSITIVE)


def library():
    return sorted(os.listdir(vms)) if os.path.isdir(vms) else []


def conf(name):
    try:
        with open(os.path.join(vms, name, "vm.conf")) as f:
            return f.read()
    except OSError:
        return None


def magick_stat(path, fmt):
    r = subprocess.run([CONVERT, path, "-format", fmt, "info:"], capture_output=True, text=True)
    return float(r.stdout.strip() or "nan")


def thumb_matches(app, name):
    """Crop VM @name's thumbnail out of a screenshot of the screen and
    compare it with `vivarium screenshot` scaled to the same size: (ok, text)."""
    t = table(main_window(app), "Virtual machines")
    r = rows(app).get(name)
    if t is None or r is None:
        return (False, "no row")
    ti = t.queryTable()
    img = None
    for c in range(ti.nColumns):
        h = ti.getColumnHeader(c)
        if h is not None and h.name == "Screen":
            img = ti.getAccessibleAt(r[0], c).queryImage()
    if img is None:
        return (False, "no Screen column")
    w, hgt = img.getImageSize()
    x, y = img.getImagePosition(pyatspi.DESKTOP_COORDS)
    if w <= 0:
        return (False, "no thumbnail")
    root = os.path.join(tmp, "root.png")
    vm = os.path.join(tmp, "vm.png")
    subprocess.run(["import", "-window", "root", root], check=False)
    if v("screenshot", name, vm, check=False).returncode:
        return (False, "vivarium screenshot failed")
    crop = os.path.join(tmp, "thumb.png")
    small = os.path.join(tmp, "vm-small.png")
    subprocess.run([CONVERT, root, "-crop", "%dx%d+%d+%d" % (w, hgt, x, y), "+repage", crop])
    subprocess.run([CONVERT, vm, "-resize", "%dx%d!" % (w, hgt), small])
    sd_thumb = magick_stat(crop, "%[fx:standard_deviation]")
    sd_vm = magick_stat(small, "%[fx:standard_deviation]")
    cmp = subprocess.run(["compare", "-metric", "RMSE", crop, small, "null:"],
                         capture_output=True, text=True)
    try:
        rmse = float(cmp.stderr.split("(")[1].split(")")[0])
    except (IndexError, ValueError):
        rmse = 1.0
    text = "thumbnail %dx%d at %d,%d: std dev %.3f (screenshot %.3f), RMSE %.3f" % (
        w, hgt, x, y, sd_thumb, sd_vm, rmse)
    return (sd_thumb > 0.05 and sd_vm > 0.05 and rmse < 0.12, text)


def vm_info(app):
    m = main_window(app)
    bar = find(m, lambda n: n.getRole() == pyatspi.ROLE_LABEL and n.name and
               n.getState().contains(pyatspi.STATE_SHOWING) and
               any(k in n.name for k in ("Created", "Deleted", "is running", "snapshot",
                                         "Saved", "VNC", "address", "port")))
    return m, bar


t0 = time.monotonic()
proc = subprocess.Popen([manager], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    app = wait(find_app, 15)
    if app is None:
        bad("the manager never appeared on the AT-SPI bus")
        sys.exit(1)
    wait(lambda: main_window(app), 5)
    for label in ("New", "Snapshots", "Settings", "Delete"):
        if button(main_window(app), label) is None:
            bad("no '%s' button with that accessible name" % label)

    # ---- the keyboard: Ctrl+N opens the New VM dialog, Escape closes it ----
    wid = subprocess.run(["xdotool", "search", "--name", "^Vivarium$"], capture_output=True,
                         text=True).stdout.split()
    if wid:
        subprocess.run(["xdotool", "windowfocus", "--sync", wid[0]], check=False)
        subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+n"], check=False)
        if wait(lambda: window(app, "New VM"), 3):
            subprocess.run(["xdotool", "key", "Escape"], check=False)
            if wait(lambda: window(app, "New VM") is None, 3):
                ok("Ctrl+N opens the New VM dialog, Escape closes it")
            else:
                bad("Escape did not close the New VM dialog")
        else:
            bad("Ctrl+N did not open the New VM dialog")
    else:
        bad("xdotool cannot find the window 'Vivarium'")

    # ---- the New VM dialog refuses bad input, changing nothing ----
    before = library()
    press(main_window(app), "New")
    dlg = wait(lambda: window(app, "New VM"), 5)
    if dlg is None:
        bad("New did not open the New VM dialog")
        sys.exit(1)
    ok("New opens the dialog; memory preset %s from the host" %
       find(dlg, lambda n: n.name == "Memory" and n.getRole() == pyatspi.ROLE_TEXT)
       .queryText().getText(0, -1))
    os.mkdir(os.path.join(tmp, "dir.iso"))
    cases = [("cli1", "64M", "", "a VM named 'cli1' already exists", "existing name"),
             ("g1", "12Q", "", "memory '12Q' is not a whole number of MiB", "memory 12Q"),
             ("g1", "64M", os.path.join(tmp, "missing.iso"), "cannot read ISO image", "a missing ISO"),
             ("g1", "64M", os.path.join(tmp, "dir.iso"), "ISO image", "an ISO that is a folder")]
    for i, (name, mem, iso, says, what) in enumerate(cases):
        set_text(dlg, "Name", name)
        set_text(dlg, "Memory", mem)
        set_text(dlg, "ISO image", iso)
        set_text(dlg, "Disk size", "64M")
        press(dlg, "Create")
        err = wait(lambda: label_with(dlg, says), 3)
        if err is not None and library() == before and conf("cli1") is not None:
            ok("%s: the dialog says '%s'; the library is unchanged %s" % (what, err.name, library()))
        else:
            bad("%s: error %s, library %s (was %s)" % (what, err and err.name, library(), before))
        if i == 1:
            time.sleep(0.3)
            shot("1-new-vm-error")

    if not have_kvm or not grub_iso:
        print("no usable /dev/kvm or no GRUB ISO: the VM's life is skipped")
        press(dlg, "Cancel")
        sys.exit(1 if guitest.failures else 0)

    # ---- create from the GRUB ISO ----
    set_text(dlg, "Name", "g1")
    set_text(dlg, "Memory", "64M")
    set_text(dlg, "ISO image", grub_iso)
    set_text(dlg, "Disk size", "64M")
    press(dlg, "Create")
    if wait(lambda: window(app, "New VM") is None and "g1" in rows(app), 10):
        c = conf("g1") or ""
        good = "memory = 64M" in c.replace("=", " = ").replace("  ", " ") or "memory=64M" in c
        ok("Create: g1 is in the list, the dialog closed; vm.conf has memory 64M: %s, the ISO: %s"
           % (good, grub_iso in c))
        if not (grub_iso in c):
            bad("g1's vm.conf lacks the ISO:\n" + c)
    else:
        bad("g1 was not created: %s" % rows(app))
    shot("2-created")

    def detail(key):
        d = find(main_window(app), lambda n: n.name == key and n.getRole() == pyatspi.ROLE_LABEL)
        rel = d and [r for r in d.getRelationSet() if r.getRelationType() == pyatspi.RELATION_LABEL_FOR]
        return (rel[0].getTarget(0).name if rel else "").replace("\u00a0", " ")

    def disks_detail():
        return detail("Disks")

    # The new VM is selected even when the folder monitor reports it after
    # the dialog closed (it did, once in CI: the pane still showed cli1).
    wait(lambda: "64.0 MiB" in disks_detail(), 3)
    sel_name = detail("Name")
    disk_txt = disks_detail()
    if sel_name != "g1":
        bad("after Create the selected VM is %r, not g1" % sel_name)
    if "64.0 MiB" in disk_txt and "on disk" in disk_txt:
        ok("details: Disks '%s'" % disk_txt)
    else:
        bad("details: Disks '%s'" % disk_txt)

    # ---- a VM started from the CLI meanwhile; its start's delay ----
    v("create", "t2", "--kernel", kernel, "--memory", "32M", "--nic", "none")
    wait(lambda: "t2" in rows(app), 2)
    t1 = time.monotonic()
    v("start", "t2", "--display", "none")
    t_cli = time.monotonic()
    if wait(lambda: state_of(app, "t2") == "Running", 3, 0.01):
        print("measured: CLI start of t2 to 'Running' in the window: %.0f ms after start returned"
              " (%.0f ms after it was run)" % ((time.monotonic() - t_cli) * 1000,
                                               (time.monotonic() - t1) * 1000), flush=True)
        ok("t2 started by the CLI shows Running")
    else:
        bad("t2 after CLI start: %s" % state_of(app, "t2"))
    v("stop", "t2", "--force")
    wait(lambda: state_of(app, "t2") == "Stopped", 3)

    # ---- start g1: the GRUB menu in the thumbnail ----
    select(app, "g1")
    press(main_window(app), "Start")
    if wait(lambda: state_of(app, "g1") == "Running", 15):
        ok("Start: g1 Running")
    else:
        bad("g1 after Start: %s" % state_of(app, "g1"))
    t1 = time.monotonic()
    grub = wait(lambda: "Vivarium test entry A" in v("screenshot", "g1", "--text", check=False).stdout,
                120, 1.0)
    if grub:
        ok("vivarium screenshot --text shows the GRUB menu after %.0f s" % (time.monotonic() - t1))
    else:
        bad("no GRUB menu on g1's screen after 120 s")
    time.sleep(3.5)         # the next thumbnail round
    res = wait(lambda: (lambda m: m if m[0] else None)(thumb_matches(app, "g1")), 8, 1.0)
    res = res or thumb_matches(app, "g1")
    (ok if res[0] else bad)("g1's thumbnail shows its screen: %s" % res[1])
    shot("3-grub-thumbnail")

    press(main_window(app), "Pause")
    if wait(lambda: state_of(app, "g1") == "Paused", 3):
        ok("Pause: g1 Paused")
    else:
        bad("g1 after Pause: %s" % state_of(app, "g1"))
    shot("4-paused")
    press(main_window(app), "Resume")
    if wait(lambda: state_of(app, "g1") == "Running", 3):
        ok("Resume: g1 Running")
    else:
        bad("g1 after Resume: %s" % state_of(app, "g1"))

    # ---- Delete and Settings while it runs ----
    press(main_window(app), "Delete")
    err = wait(lambda: label_with(main_window(app), "is running"), 3)
    if err is not None and os.path.isdir(os.path.join(vms, "g1")):
        ok("Delete of the running g1 refused: '%s'" % err.name)
    else:
        bad("Delete of the running g1: %s" % (err and err.name))
    press(main_window(app), "Settings")
    sd = wait(lambda: window(app, "Settings of g1"), 3)
    reason = sd and label_with(sd, "can be changed once it is stopped")
    mem = sd and find(sd, lambda n: n.name == "Memory" and n.getRole() == pyatspi.ROLE_TEXT)
    if reason is not None and mem is not None and not mem.getState().contains(pyatspi.STATE_SENSITIVE):
        ok("Settings of the running g1: memory insensitive, the reason shown")
    else:
        bad("Settings of the running g1: reason %s, memory %s" % (reason, mem))
    time.sleep(0.3)
    shot("5-settings-running")
    if sd is not None:
        press(sd, "Cancel")

    # ---- snapshot: take, revert ----
    press(main_window(app), "Snapshots")
    sn = wait(lambda: window(app, "Snapshots of g1"), 3)
    if sn is None:
        bad("Snapshots did not open")
    else:
        press(sn, "Take…")
        q = wait(lambda: window(app, "Take Snapshot"), 3)
        set_text(q, "Snapshot name", "s1")
        set_text(q, "Description", "at the GRUB menu")
        t1 = time.monotonic()
        press(q, "Take")
        if wait(lambda: "s1" in rows(sn, "Snapshots"), 60, 0.2):
            ok("Take: s1 in the snapshot tree after %.1f s: %s" % (time.monotonic() - t1,
                                                                  rows(sn, "Snapshots")["s1"][1:]))
        else:
            bad("s1 not in the tree: %s" % (rows(sn, "Snapshots"),))
        lst = v("snapshot", "list", "g1").stdout
        (ok if "s1" in lst else bad)("vivarium snapshot list agrees: %s" % lst.strip().replace("\n", " | "))
        time.sleep(0.3)
        shot("6-snapshot-taken")
        select(app, "s1", "Snapshots", sn)
        press(sn, "Revert")
        cq = wait(lambda: window(app, "Revert to snapshot") or
                  find(app, lambda n: n.getRole() == pyatspi.ROLE_PUSH_BUTTON and
                       n.name.replace("_", "") == "Revert to snapshot"), 3)
        press(app, "Revert to snapshot")
        msg = wait(lambda: label_with(main_window(app), "is back at snapshot 's1'"), 60, 0.2)
        if msg is not None and state_of(app, "g1") in ("Running", "Paused"):
            ok("Revert: '%s'; g1 %s" % (msg.name, state_of(app, "g1")))
        else:
            bad("Revert: message %s, g1 %s" % (msg and msg.name, state_of(app, "g1")))
        time.sleep(0.3)
        shot("7-reverted")
        press(sn, "Close")
    if wait(lambda: label_with(main_window(app), "Snapshots") and
            find(main_window(app), lambda n: n.getRole() == pyatspi.ROLE_LABEL and n.name == "1"), 3):
        ok("details: 1 snapshot")

    # ---- stop, delete ----
    select(app, "g1")
    press(main_window(app), "Power Off")
    if wait(lambda: state_of(app, "g1") == "Stopped", 10):
        ok("Power Off: g1 Stopped")
    else:
        bad("g1 after Power Off: %s" % state_of(app, "g1"))
    shot("8-stopped")
    press(main_window(app), "Delete")
    al = wait(lambda: top_with_label(app, "Delete VM 'g1'?"), 3)
    if al is None or label_with(al, "Delete VM 'g1'?") is None:
        bad("no confirmation naming g1")
    else:
        time.sleep(0.3)
        shot("9-delete-confirm")
        press(al, "Delete")
    if wait(lambda: "g1" not in rows(app) and "g1" not in library(), 5):
        ok("Delete: g1 gone from the window and the library")
    else:
        bad("g1 after Delete: %s %s" % (rows(app).keys(), library()))

    # ---- a start's error (VNC port in use) in the info bar, set through Settings ----
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    select(app, "t2")
    press(main_window(app), "Settings")
    sd = wait(lambda: window(app, "Settings of t2"), 3)
    before_conf = conf("t2")
    set_text(sd, "Memory", "12Q")
    press(sd, "Save")
    err = wait(lambda: label_with(sd, "memory '12Q'"), 3)
    if err is not None and conf("t2") == before_conf and window(app, "Settings of t2"):
        ok("Settings refuses memory 12Q: '%s'; vm.conf unchanged, the dialog stays" % err.name)
    else:
        bad("Settings with memory 12Q: %s" % (err and err.name))
    set_text(sd, "Memory", "32M")
    set_text(sd, "VNC", "127.0.0.1:%d" % port)
    press(sd, "Save")
    if wait(lambda: window(app, "Settings of t2") is None and
            ("127.0.0.1:%d" % port) in (conf("t2") or ""), 3):
        ok("Settings: t2's VNC set to 127.0.0.1:%d in vm.conf" % port)
    else:
        bad("Settings did not save t2's VNC: %s" % conf("t2"))
    time.sleep(0.3)
    press(main_window(app), "Start")
    err = wait(lambda: find(main_window(app), lambda n: n.getRole() == pyatspi.ROLE_LABEL and
                            n.name.startswith("t2: ") and n.getState().contains(pyatspi.STATE_SHOWING)), 15)
    if err is not None and wait(lambda: state_of(app, "t2") == "Stopped", 5):
        ok("Start with the VNC port in use: '%s' in the info bar" % err.name)
    else:
        bad("Start with the VNC port in use: %s, t2 %s" % (err and err.name, state_of(app, "t2")))
    time.sleep(0.5)
    shot("10-vnc-error")
    hold.close()

    # ---- a full clone of t2's current state through the Snapshots dialog ----
    select(app, "t2")
    press(main_window(app), "Snapshots")
    sn = wait(lambda: window(app, "Snapshots of t2"), 3)
    if sn is None:
        bad("Snapshots of t2 did not open")
    else:
        press(sn, "Clone…")
        q = wait(lambda: top_with_label(app, "current state"), 3)
        if q is None:
            bad("no Clone dialog")
        else:
            set_text(q, "Clone name", "t2-copy")
            press(q, "Clone")
            if wait(lambda: "t2-copy" in rows(app) and conf("t2-copy") is not None, 10):
                c = conf("t2-copy")
                ok("Clone: t2-copy in the list; its vm.conf names its source: %s"
                   % ("source = t2" in c or "source=t2" in c))
            else:
                bad("t2-copy not made: %s" % rows(app).keys())
        time.sleep(0.3)
        shot("11-cloned")
        press(sn, "Close")

    # ---- devices switched in Settings; a saved VM's hardware locked ----
    select(app, "t2")
    press(main_window(app), "Settings")
    sd = wait(lambda: window(app, "Settings of t2"), 3)
    if sd is not None:
        tick(sd, "TPM")
        tick(sd, "USB controller")
        press(sd, "Save")
    # create gave t2 the USB controller: the click takes it away.
    if wait(lambda: window(app, "Settings of t2") is None and
            "tpm=on" in (conf("t2") or "") and "usb=on" not in (conf("t2") or ""), 3):
        ok("Settings: t2's TPM switched on, its USB controller off (tpm=on, no usb=on in vm.conf)")
    else:
        bad("Settings did not switch t2's TPM on and USB off: %s" % conf("t2"))
    # The state file `vivarium save` leaves: t2 is Saved.
    with open(os.path.join(vms, "t2", "saved.state"), "w") as f:
        f.write("a saved state\n")
    if not wait(lambda: state_of(app, "t2") == "Saved", 5):
        bad("t2 with a saved.state: %s" % state_of(app, "t2"))
    select(app, "t2")
    press(main_window(app), "Settings")
    sd = wait(lambda: window(app, "Settings of t2"), 3)
    reason = sd and label_with(sd, "holds a saved state")
    locked = sd and [n for n in ("Memory", "vCPUs", "TPM", "USB controller", "Sound card")
                     if sensitive(sd, n) is not False]
    if reason is not None and locked == [] and sensitive(sd, "VNC") is True:
        ok("Settings of the saved t2: memory, vCPUs and devices insensitive, the reason shown, VNC editable")
    else:
        bad("Settings of the saved t2: reason %s, not locked: %s, VNC sensitive %s"
            % (reason, locked, sd and sensitive(sd, "VNC")))
    time.sleep(0.3)
    shot("12-settings-saved")
    if sd is not None:
        set_text(sd, "Notes", "saved at the test")
        press(sd, "Save")
        if wait(lambda: window(app, "Settings of t2") is None and
                "saved at the test" in (conf("t2") or "") and "tpm=on" in conf("t2"), 3):
            ok("Settings of the saved t2: the notes changed, the hardware kept")
        else:
            bad("Settings of the saved t2 did not save the notes: %s" % conf("t2"))
finally:
    guitest.stop(proc)
    subprocess.run(["rm", "-rf", tmp])

guitest.finish()
