"""The launch stage: what a launch submits (operation), the launcher that submits it exactly once, and the
group's record."""
