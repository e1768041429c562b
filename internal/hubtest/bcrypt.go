package hubtest

import "golang.org/x/crypto/bcrypt"

// mustBcrypt hashes at the minimum cost: test speed, not strength.
func mustBcrypt(pw string) string {
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(b)
}
