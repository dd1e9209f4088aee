# SPDX-License-Identifier: MIT
"""guitest.py - what test_manager.py and test_manager_vm.py share: results
(ok/bad, counted in `failures`), screenshots, the CLI, and finding and
pressing things in vivarium-manager's accessibility tree (AT-SPI).

A test calls setup(VIVARIUM, ARTEFACTS[, shot_prefix]) first."""
import os
import subprocess
import sys
import time

import pyatspi

failures = 0
_viv = "vivarium"
_art = "."
_prefix = ""


def setup(viv, art, shot_prefix=""):
    """The CLI v() runs, and where shot() leaves NAME.png (prefixed)."""
    global _viv, _art, _prefix
    _viv, _art, _prefix = viv, art, shot_prefix


def ok(msg):
    print("ok   " + msg, flush=True)


def bad(msg):
    global failures
    failures += 1
    print("FAIL " + msg, flush=True)


def shot(name):
    subprocess.run(["import", "-window", "root", os.path.join(_art, _prefix + name + ".png")],
                   check=False)


def v(*args, check=True):
    """`vivarium ARGS...`; a failure is bad() unless check=False."""
    r = subprocess.run([_viv] + list(args), capture_output=True, text=True)
    if r.returncode and check:
        bad("vivarium %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def wait(cond, sec=5.0, step=0.05):
    """Poll the accessibility tree (the test's side, not the manager's)."""
    end = time.monotonic() + sec
    while time.monotonic() < end:
        r = cond()
        if r:
            return r
        time.sleep(step)
    return cond()


def find_app():
    desk = pyatspi.Registry.getDesktop(0)
    for i in range(desk.childCount):
        a = desk.getChildAtIndex(i)
        if a is not None and a.name in ("vivarium-manager", "Vivarium"):
            return a
    return None


def find(node, pred):
    def safe(n):
        try:
            return n is not None and pred(n)
        except Exception:       # a node gone meanwhile
            return False
    return pyatspi.findDescendant(node, safe, True) if node is not None else None


def cell_text(c):
    """A cell's text; a column of an icon and a text is a cell of cells."""
    if c is None:
        return ""
    if c.name:
        return c.name
    for i in range(c.childCount):
        k = c.getChildAtIndex(i)
        if k is not None and k.name:
            return k.name
    return ""


def button(node, label):
    return find(node, lambda n: n.getRole() in (pyatspi.ROLE_PUSH_BUTTON, pyatspi.ROLE_TOGGLE_BUTTON)
                and n.name.replace("_", "") == label)


def press(node, label):
    """Click button @label under @node; False (and bad()) if it is missing
    or insensitive."""
    b = button(node, label)
    if b is None:
        bad("no button '%s'" % label)
        return False
    if not b.getState().contains(pyatspi.STATE_SENSITIVE):
        bad("button '%s' is insensitive" % label)
        return False
    return click(b)


def click(node):
    """Run @node's "click" action (else its first)."""
    act = node.queryAction()
    for i in range(act.nActions):
        if act.getName(i) == "click":
            act.doAction(i)
            return True
    act.doAction(0)
    return True


def stop(proc):
    """End the manager started as @proc (TERM; KILL after 5 s) and show
    what it printed."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    if out.strip():
        print("manager output:\n" + out)


def finish():
    """The summary line, then exit: 0 pass, 1 fail."""
    print("%s: %d failure(s)" % ("PASS" if not failures else "FAIL", failures))
    sys.exit(1 if failures else 0)
