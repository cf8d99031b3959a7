"""Invoices (issue 17): a seller bills a buyer; the buyer pays it into an escrow of its own.

``pricing`` prices the lines (pure Decimal), ``store`` reads and writes invoices (the one
place their SQL lives), ``model`` is what the routes answer with. Paying is a money
operation that runs in the database (``invoice_pay``, through ``money_call``).
"""
