package clouddnsemu

// ServiceAccountKey makes a service account and returns its JSON key file (a credentialsFile), whose token_uri is
// baseURL+"/token": the URL this emulator is served at (httptest.Server.URL).
func (e *Emulator) ServiceAccountKey(baseURL, email string) ([]byte, error) {
	return e.auth.ServiceAccountKey(baseURL, e.project, email)
}
