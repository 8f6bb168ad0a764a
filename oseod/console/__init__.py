"""The operator web console under ``/console/``: server-rendered pages over
:class:`oseod.admin.actions.OperatorActions`, for users with the admin flag."""
