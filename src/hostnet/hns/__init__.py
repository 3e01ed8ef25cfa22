"""HNS's own objects for hostnet: version gates, the v1/v2 JSON schema, the policy registry.

Pure code: nothing here touches the kernel, the store or the service. The HNS/HCN faces
(REST under ``/hns`` and ``/hcn``), the ``hostnet.hcn`` client and the Windows CNI netconf
build on these modules.
"""
