"""What an operator sees and touches (DESIGN §5): the live terminal view, the HTTP app (dashboard,
``/metrics``, ``/healthz``, pause/resume), alerts. It reads the run's statistics and the rows of
its event log, and acts only by sending the decision task operator messages through
``Controls``; it never writes decisions."""
