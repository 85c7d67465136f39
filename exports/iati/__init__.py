"""IATI 2.03 activity files: one ``iati-activity`` per grant, built from what Grantkeeper holds.

``codes`` reads the IATI codelists kept in ``codelists/``; ``builder`` makes the XML;
``validation`` checks it against the IATI 2.03 schemas in ``schema/``; ``services`` keeps the
files in the export history; ``views`` is the grant's IATI page.
"""
