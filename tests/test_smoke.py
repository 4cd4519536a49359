async def test_party_registers(hub, make_peer):
    cpo = await make_peer(("NL", "CPA", "CPO"))
    token_a = await hub.invite("cpo")
    answer = await cpo.register_with(hub.versions_url, token_a)
    assert answer["status_code"] == 1000
    assert answer["data"]["roles"][0]["role"] == "HUB"
    status, body, _ = await hub.call("GET", "/ocpi/2.2.1/credentials", token=cpo.hub_token)
    assert status == 200 and body["data"]["token"] == cpo.hub_token
