def test_program_user_sees_own_grant_listed(program_client, world):
    page = program_client.get("/grants/list/").get_data(as_text=True)
    assert "GA-1" in page
    assert "GB-1" not in page
