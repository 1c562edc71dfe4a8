"""PACS query/retrieve/store over DICOMweb (dicomweb-client) and DIMSE (pynetdicom). Qt-free.

``client_for(node)`` gives a :class:`~app.pacs.client.PacsClient` for a configured
:class:`~app.pacs.nodes.PacsNode`; every failure is a :class:`~app.pacs.errors.PacsError`
with a one-line message naming the node.
"""
