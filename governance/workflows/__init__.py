"""Flows that span domains, above them all: a consent withdrawn (:mod:`.withdrawals`) and a video taken down
(:mod:`.takedowns`) reach into the remix lineage and the takedown notices. The views (and any other front door:
the CLI, the pages) call these; the domain services below never import them, so the domains form no circle
(``tests/test_architecture.py``; ``docs/adr/0016-cross-domain-flows-above-the-domains.md``).

The layers, lowest first (each imports only those before it):

1. the models, :mod:`governance.guardians.rules`, :mod:`governance.notices.timeline`,
   :mod:`governance.remix.lineage`;
2. the likenesses' services, then the guardians' and restrictions' (built on the likenesses'), then the
   generations' (the gate's);
3. :mod:`governance.remix.services` (what a withdrawal does to the lineage), then
   :mod:`governance.notices.services` (a notice's own takedown follows the lineage);
4. this package.
"""
