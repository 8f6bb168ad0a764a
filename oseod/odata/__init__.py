"""The OData vocabulary (ODIP production orders, LTA orders, batch orders):
pure, like :mod:`oseod.oseo`. No Twisted, no Redis, no I/O: JSON and CSDL
in and out of the model's values (../shared/notes/rest-ordering.md)."""
